"""HTTP reverse proxy that mounts the lab's fault engine in front of a real IdP.

Entry points: ``tokenslo proxy`` (``cli.py``) and ``FaultProxy`` (``app.py``), an
ASGI app for uvicorn. Header rules live in ``headers.py``, the upstream client in
``forward.py``.
"""

from tokenslo.proxy.app import FaultProxy, create_proxy_app, is_control_path

__all__ = ["FaultProxy", "create_proxy_app", "is_control_path"]
