"""Chaos Toolkit extension (probes and actions) and the experiment runner."""
