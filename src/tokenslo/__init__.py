"""tokenslo: SLO monitoring and chaos-testing harness for token infrastructure."""

__version__ = "0.1.0"
