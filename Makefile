# fcocr: one entry point. Every target makes its own virtual environment and installs what it needs.
#   make demo    recognize the shipped samples offline with the real handler, and show the results
#   make test    lint (ruff), then run the whole test suite
#   make lint    ruff only
#   make bench   print the benchmark figures quoted in the README
#   make package build build/<function>.zip for Function Compute [ROUTES=file-or-json] [CODE_BUCKET=bucket]
#                [RUNTIME=python3.12|python3.10] [VERIFY=python: import each zip and call each handler with FC's
#                runtime and context emulated]
#   make deploy-files  write template.yml, s.yaml and deploy/ from shared/fcocr/tools/deploy.py
#   make live-check    opt-in, paid: call each family you have credentials for once and compare the answer with
#                      the emulator's (never in CI; says so and exits 0 without credentials)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP_FLAGS = --disable-pip-version-check --quiet

.PHONY: demo test lint bench package deploy-files live-check clean

$(VENV)/.installed-%: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-local,oss,dev
	$(VENV)/bin/fcocr demo --out demo-out

test: $(VENV)/.installed-local,oss,dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(VENV)/.installed-local,oss,dev
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed-local,oss,dev,bench
	$(PY) bench/run.py
	$(PY) bench/accuracy.py
	$(PY) bench/first_look.py
	$(PY) bench/cloud.py
	$(PY) bench/claims.py
	$(PY) bench/backfill.py
	$(PY) bench/memory.py
	$(PY) bench/fields_accuracy.py
	$(PY) bench/wire.py

# The routes decide which vendor SDKs go in (README, "Deploy"); CODE_BUCKET also writes build/template.yml for ROS.
package: $(VENV)/.installed-oss
	$(VENV)/bin/fcocr package $(if $(ROUTES),--routes '$(ROUTES)') $(if $(CODE_BUCKET),--code-bucket '$(CODE_BUCKET)') \
	  $(if $(RUNTIME),--runtime '$(RUNTIME)') $(if $(VERIFY),--verify '$(VERIFY)')

# The deploy files are generated from the one declaration of the functions (shared/fcocr/tools/deploy.py).
deploy-files: $(VENV)/.installed-oss
	$(VENV)/bin/fcocr deploy-files

live-check: $(VENV)/.installed-local,oss,dev
	$(PY) -m fcocr.tools.livecheck

clean:
	rm -rf .venv .venv-py310 demo-out .pytest_cache build *.egg-info shared/*.egg-info
