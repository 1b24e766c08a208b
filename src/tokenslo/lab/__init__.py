"""The lab: a reference token infrastructure on one machine.

``faults`` is the one fault engine (IdP, gateway, later a reverse proxy);
``idp`` and ``gateway`` are the services; ``orchestrator`` starts them with real
Prometheus and Alertmanager (``tokenslo lab up|down|status``).
"""

# Where ``lab up`` keeps its state, and the target description it writes there: every other
# component finds the lab only through that file (tokenslo.target).
LAB_STATE_DIR = ".tokenslo/lab"
LAB_TARGET_FILE = f"{LAB_STATE_DIR}/target.yaml"
