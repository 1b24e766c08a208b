# Thin aliases; the scripts/ do the work and bootstrap themselves.
.PHONY: bootstrap test lint goldens

bootstrap:
	scripts/bootstrap

test:
	scripts/test

lint:
	scripts/bootstrap && .venv/bin/ruff check src tests benchmarks

goldens:
	scripts/refresh-goldens
