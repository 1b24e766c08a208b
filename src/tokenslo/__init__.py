"""tokenslo: SLO monitoring and chaos-testing harness for token infrastructure."""

__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict:
    """Chaos Toolkit's entry point for ``chaos discover tokenslo`` (imported lazily)."""
    from tokenslo.chaos.discovery import discover as _discover

    return _discover(discover_system=discover_system)
