# Every target bootstraps its own virtual environment from a fresh clone:
# python3 -m venv, then uv installs exactly the versions pinned in uv.lock.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
STAMP   := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
EXTRAS  ?= --extra dev --extra spark
DEMO_DIR ?= demo

.PHONY: demo test lint typecheck bench clean venv

venv: $(STAMP)

$(STAMP):
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8
	@$(UV) sync --frozen --inexact $(EXTRAS)
	@rm -f $(VENV)/.synced-* && touch $@

demo: $(STAMP)
	$(VENV)/bin/wzcredit demo --workdir $(DEMO_DIR)

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PYTHON) bench/ingest.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
