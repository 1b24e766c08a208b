"""SLO and game-day reports (HTML with charts, Markdown) from Jinja templates (``templates/``)."""
