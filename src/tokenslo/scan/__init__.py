"""``tokenslo scan``: find bearer tokens, JWTs and other secrets leaked into files (F9,
token theft in CI), and say whether each JWT could still be used — without ever
printing the secret itself."""
