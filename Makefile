# Everything a fresh machine needs, in two targets: `make acceptance` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: setup setup-cpu browser acceptance test test-fast lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

setup-cpu: setup
	$(BIN)/picoclaw-vllm server setup-cpu

# Debian's Chromium, for the report's real-browser test (needs root, as on CI).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

acceptance: setup-cpu
	$(BIN)/picoclaw-vllm acceptance

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint setup-cpu browser
	$(BIN)/pytest

# The tests that need no vLLM (stand-ins, units, synthetic runs): about 3 minutes on 2 cores.
test-fast: setup
	$(BIN)/pytest -m 'not vllm'

clean:
	rm -rf $(VENV) runs .artifacts
