# `make run`: set up and run the flagship demo. `make test`: set up and run the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all setup lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) examples/demo.py

# The default run skips cases marked slow (longer configurations of features the fast cases cover
# too); `make test-all` runs everything.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check gcomp tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/dispatch.py
	$(PY) benchmarks/eager_train.py
	$(PY) benchmarks/train_step.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
