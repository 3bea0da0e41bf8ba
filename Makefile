# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SHARED_DATA ?= ../shared/data

export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 300
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install demo test bench lock clean

install: $(VENV)/.installed

# The lock file pins every package; the project itself is installed editable on top.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "skadestue needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every import (GX, Prefect) would compile from source.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	touch $@

demo: install
	$(BIN)/skadestue demo --out data/demo $(if $(wildcard $(SHARED_DATA)/boundaries/dagi_kommuner.geojson),--municipalities $(SHARED_DATA)/boundaries/dagi_kommuner.geojson)

test: install
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python bench/run_all.py

# Regenerate requirements.lock after changing pyproject.toml dependencies.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test -p 3.11 -o requirements.lock

clean:
	rm -rf data/demo .pytest_cache
