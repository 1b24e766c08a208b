"""The pure core: the SLO model, durations, burn-rate math, SLI PromQL and time scaling.

Nothing here does I/O (no files, no network, no processes, no clock reads): every
other package builds on these functions, and the tests can check them exhaustively
without a lab. ``tests/test_layering.py`` keeps it that way (docs/architecture.md).
"""
