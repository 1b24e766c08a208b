"""The lab: a reference token infrastructure on one machine.

``faults`` is the one fault engine (IdP, gateway, later a reverse proxy);
``idp`` and ``gateway`` are the services; ``orchestrator`` starts them with real
Prometheus and Alertmanager (``tokenslo lab up|down|status``).
"""
