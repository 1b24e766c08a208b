"""The lab gateway: a resource server validating access tokens per RFC 8725 / RFC 9068.

Entry points: ``create_app(config, admin_secret=...)`` (``app.py``) for in-process
use and ``python -m tokenslo.lab.gateway --config FILE`` for the orchestrator.
The validation order and its ``result`` labels live in ``validator.py``.
"""
