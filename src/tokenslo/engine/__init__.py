"""The SLO engine: burn-rate math (pure), evaluation and backtests against Prometheus."""
