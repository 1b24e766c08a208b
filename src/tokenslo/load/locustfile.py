"""The locustfile ``tokenslo loadtest run`` hands to Locust.

It exposes exactly one user class, the scenario named by ``TOKENSLO_SCENARIO``
(Locust runs every non-abstract user class it finds in a locustfile), and the
shape named by ``TOKENSLO_SHAPE`` if any. ``loadtests/*.py`` are the same thing
with the scenario fixed, for plain ``locust -f``.
"""

from __future__ import annotations

import os

from tokenslo.load.protocol import ENV_SCENARIO
from tokenslo.load.shapes import selected_shape
from tokenslo.load.users import SCENARIOS

Scenario = SCENARIOS[os.environ.get(ENV_SCENARIO, "mixed")]
Shape = selected_shape()
