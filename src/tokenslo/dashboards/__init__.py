"""Grafana dashboards: SLOs → import-ready dashboard JSON from Jinja templates (``templates/``)."""
