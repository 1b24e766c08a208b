# Thin aliases; the scripts/ do the work and bootstrap themselves.
.PHONY: bootstrap test lint goldens

bootstrap:
	scripts/bootstrap

test:
	scripts/test

lint:
	scripts/lint

goldens:
	scripts/refresh-goldens
