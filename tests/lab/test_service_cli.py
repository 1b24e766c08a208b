"""The command line the IdP and gateway entry points share (``lab.serving.service_parser``)."""

from __future__ import annotations

import logging

import pytest

from tokenslo.lab.serving import log_to_stderr, service_parser


def test_the_service_parser_takes_config_log_level_and_secret_file() -> None:
    parser = service_parser("python -m svc", "svc config", "what svc does")
    args = parser.parse_args(["--config", "c.yaml", "--admin-secret-file", "s"])
    assert (args.config, args.log_level, args.admin_secret_file) == ("c.yaml", "info", "s")
    assert parser.prog == "python -m svc"
    assert parser.description == "what svc does"
    assert "$TOKENSLO_ADMIN_SECRET" in parser.format_help()


def test_the_service_parser_requires_a_config_and_a_known_level() -> None:
    parser = service_parser("python -m svc", "svc config")
    for argv in ([], ["--config", "c.yaml", "--log-level", "trace"]):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(argv)
        assert exited.value.code == 2


def test_log_to_stderr_sets_the_level(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    log_to_stderr("warning")
    assert root.level == logging.WARNING
    assert root.handlers[0].formatter is not None
    assert root.handlers[0].formatter._fmt == "%(asctime)s %(levelname)s %(name)s %(message)s"
