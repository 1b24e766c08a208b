"""The lab IdP: a real OAuth 2.0 token service (client_credentials, refresh_token with
rotation and reuse detection, RFC 7662 introspection, RFC 7009 revocation, RFC 7517
JWKS, RFC 8414 discovery, signing-key rotation) that exports the lab metric contract
(README, "The lab").

Entry points: ``python -m tokenslo.lab.idp --config FILE`` and
``tokenslo.lab.idp.app.create_app(config, ...)`` for in-process use.
"""
