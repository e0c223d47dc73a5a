# The two commands of the README: `make demo` and `make test`. Both set everything up
# on a fresh machine with only Python: a virtualenv, the package, and for the tests
# Debian's chromium (browser test) plus Java and the spark extra (Spark engine tests).
# `make test` ends with the wheel smoke: the built wheel installed outside the checkout.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO_DIR ?= demo
PYTEST_ARGS ?=

.PHONY: demo test venv system-deps spark-deps clean bench

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Debian's chromium for the real-browser dashboard test (never a browser download).
system-deps:
	@bash scripts/system-deps.sh

# Java from Debian + pyspark/sqlglot into the venv, for the Spark engine tests.
spark-deps: venv
	@bash scripts/spark-deps.sh $(PY)

demo: venv
	$(VENV)/bin/monitor demo --dir $(DEMO_DIR)

test: venv system-deps spark-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)
	bash scripts/wheel-smoke.sh $(PY)

bench: venv
	$(PY) benchmarks/compute.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
