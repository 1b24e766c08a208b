"""Edges to Prometheus: running the real binaries, and querying any PromQL backend."""
