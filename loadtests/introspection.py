"""Locust scenario 'introspection' (logic in tokenslo.load.users; see docs/loadtest.md).

    locust -f loadtests/introspection.py                      # web UI on http://127.0.0.1:8089
    locust -f loadtests/introspection.py --headless -u 20 -r 10 -t 30s

Target: --target-file FILE or TOKENSLO_TARGET_FILE (docs/target.md: issuer, API, clients
by role and where their secrets are), default the running lab's target.yaml.
Set TOKENSLO_SHAPE=ramp|step|spike|soak for a load shape.
"""

from tokenslo.load.shapes import selected_shape
from tokenslo.load.users import IntrospectionUser

__all__ = ["IntrospectionUser", "Shape"]

Shape = selected_shape()
