"""Jinja renderers: Grafana dashboards and SLO/game-day reports."""
