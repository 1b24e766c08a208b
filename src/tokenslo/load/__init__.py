"""Locust load tests of token infrastructure and the SLO-derived CI gate."""
