# Two commands set everything up on a fresh machine:
#   make run    installs (once) and runs the pipeline on the embedded sample
#   make test   installs (once) and runs the test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements/lock.txt
STAMP := $(VENV)/.installed
CONFIG ?= configs/sample.yaml
PYTEST_ARGS ?=
IMDB ?= ../shared/data/imdb/aclImdb_v1.tar.gz

.PHONY: help install run test browser lint bench-sample bench-imdb clean lock

help:
	@echo "make run          run the pipeline on the embedded sample (installs first if needed)"
	@echo "make test         run the test suite (installs first if needed)"
	@echo "make lint         ruff"
	@echo "make bench-sample time a full sample run (bench/sample_run.py)"
	@echo "make bench-imdb   full IMDB benchmark (bench/imdb.py): IMDB=archive|URL [BENCH_ARGS=--skip-peer]"
	@echo "make clean        remove runs/ (keeps .venv)"

# Python 3.10 from PATH, else from pyenv; a clear message when neither has it.
PYTHON310 := $(shell command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2]==(3,10)' >/dev/null 2>&1 && command -v python3.10)
ifeq ($(PYTHON310),)
PYTHON310 := $(shell p=$$(pyenv prefix 3.10 2>/dev/null | head -1); [ -x "$$p/bin/python3.10" ] && echo "$$p/bin/python3.10" || ls -1 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 2>/dev/null | tail -1)
endif

$(STAMP): $(LOCK) pyproject.toml
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: Python 3.10 is required (TFX 1.16 supports only 3.10) and was not found."; \
	  echo "       Put python3.10 on PATH, or install it with pyenv: 'pyenv install 3.10'."; \
	  exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON310)"
	@[ -x $(PY) ] || $(PYTHON310) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -c $(LOCK) pip setuptools wheel
	@echo "==> installing from $(LOCK) (first time: about 3 minutes, 3.3 GB)"
	@$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -c $(LOCK) -e '.[dev,kubeflow]'
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; exit 1; }
	@$(PY) -c 'import pipeline.cli' || { echo "error: install incomplete"; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sentiment-pipeline run --config $(CONFIG)

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian's Chromium for the report's headless-browser test: installed when missing and this
# user can (root with apt-get, as on CI); otherwise that one test is skipped with a message.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "==> installing chromium (report test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else echo "note: chromium is not installed; the report's browser test will be skipped"; fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check pipeline components tests bench
	$(VENV)/bin/ruff format --check pipeline components tests bench

bench-sample: $(STAMP)
	$(PY) bench/sample_run.py

bench-imdb: $(STAMP)
	$(PY) -m bench.imdb --archive $(IMDB) $(BENCH_ARGS)

clean:
	rm -rf runs

# Regenerate the lock from the top-level pins in pyproject.toml (needs the package registry).
LOCK_VENV := /tmp/sentiment-lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON310) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q 'pip==24.2' && $(LOCK_VENV)/bin/pip install -q '.[dev,kubeflow]'
	$(LOCK_VENV)/bin/pip uninstall -q -y sentiment-pipeline
	{ sed -n '1,3p' $(LOCK); for p in pip setuptools wheel; do $(LOCK_VENV)/bin/pip show $$p | awk -v p=$$p '/^Version/{print p"=="$$2}'; done; \
	  $(LOCK_VENV)/bin/pip freeze; } > $(LOCK).new && mv $(LOCK).new $(LOCK)
