"""The SLO engine: evaluation and backtests against Prometheus (the math is in tokenslo.core)."""
