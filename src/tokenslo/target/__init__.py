"""What tokenslo points at: one target description (``target.yaml``) for every component.

The lab is one target among many: ``tokenslo lab up`` writes its own description,
and a real IdP (behind a ``tokenslo proxy``) gets one written by hand. Load tests,
the prober, chaos experiments, the game day, ``slo status`` and reports all read
targets through :func:`tokenslo.target.loader.load_target`; client secrets only
through :mod:`tokenslo.target.credentials`. Format: docs/target.md.
"""
