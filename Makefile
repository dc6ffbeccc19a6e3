# fcocr: one entry point. Every target makes its own virtual environment and installs what it needs.
#   make demo    recognize the shipped samples offline with the real handler, and show the results
#   make test    run the whole test suite
#   make bench   print the benchmark figures quoted in the README
#   make package build build/<function>.zip for Function Compute [ROUTES=file-or-json] [CODE_BUCKET=bucket]
#                [VERIFY=python3.10: import each zip with FC's runtime emulated]
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP_FLAGS = --disable-pip-version-check --quiet

.PHONY: demo test bench package clean

$(VENV)/.installed-%: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-local,oss,dev
	$(VENV)/bin/fcocr demo --out demo-out

test: $(VENV)/.installed-local,oss,dev
	$(PY) -m pytest -q

bench: $(VENV)/.installed-local,oss,dev,bench
	$(PY) bench/run.py
	$(PY) bench/accuracy.py
	$(PY) bench/cloud.py
	$(PY) bench/backfill.py

# The routes decide which vendor SDKs go in (README, "Deploy"); CODE_BUCKET also writes build/template.yml for ROS.
package: $(VENV)/.installed-oss
	$(VENV)/bin/fcocr package $(if $(ROUTES),--routes '$(ROUTES)') $(if $(CODE_BUCKET),--code-bucket '$(CODE_BUCKET)') \
	  $(if $(VERIFY),--verify '$(VERIFY)')

clean:
	rm -rf .venv .venv-py310 demo-out .pytest_cache build *.egg-info shared/*.egg-info
