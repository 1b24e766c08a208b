"""Locust scenario 'fresh-api' (logic in tokenslo.load.users; see docs/loadtest.md): each task
is a new client_credentials grant and one API call with that token (no token caching).

    locust -f loadtests/fresh-api.py                      # web UI on http://127.0.0.1:8089
    locust -f loadtests/fresh-api.py --headless -u 20 -r 10 -t 30s

Target: --target-file FILE or TOKENSLO_TARGET_FILE (docs/target.md: issuer, API, clients
by role and where their secrets are), default the running lab's target.yaml.
Set TOKENSLO_SHAPE=ramp|step|spike|soak for a load shape.
"""

from tokenslo.load.shapes import selected_shape
from tokenslo.load.users import FreshApiUser

__all__ = ["FreshApiUser", "Shape"]

Shape = selected_shape()
