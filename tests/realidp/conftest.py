"""The ``realidp`` fixture: panva's oidc-provider (npm, OpenID Certified), an OAuth 2.0
provider nobody here wrote, started once per test session on a free loopback port.

Set-up: ``npm ci --prefix tests/realidp`` (CI does it). Skipped only when Node.js is
missing; with node present but the package not installed the tests fail, so CI can
never silently pass without it.

Session scope is safe: the provider keeps no state a test can change for another
(each test issues, introspects and revokes its own tokens; the client and keys are
fixed at start), and starting node once saves seconds per module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from realidp_server import RealIdP, start_realidp

__all__ = ["RealIdP", "realidp"]


@pytest.fixture(scope="session")
def realidp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealIdP]:
    yield from start_realidp(tmp_path_factory)
