PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# the lowest dependency versions pyproject.toml allows (its floors), in a venv of their own
VENV_LOWEST := .venv-lowest
PY_LOWEST := $(VENV_LOWEST)/bin/python
LOWEST := ci/lowest-constraints.txt

.PHONY: demo test test-lowest lint stress bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

# the test extra and the optional integrations the suite exercises (Dask, Ray, MLflow, W&B, Hugging Face datasets);
# test-lowest runs without them (their tests skip) to keep the floors those of the core install
$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test,dask,ray,mlflow,wandb,hf]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-lint: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[lint]'
	touch $@ $(VENV)/.installed

$(VENV_LOWEST)/.installed: pyproject.toml $(LOWEST)
	rm -rf $(VENV_LOWEST)
	$(PYTHON) -m venv $(VENV_LOWEST)
	echo '*' > $(VENV_LOWEST)/.gitignore
	$(PY_LOWEST) -m pip install --quiet --upgrade pip
	$(PY_LOWEST) -m pip install --quiet --constraint $(LOWEST) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

test: $(VENV)/.installed-test
	$(PY) -m pytest

# the test suite on the lowest versions of every dependency (test_packaging checks they are the ones installed)
test-lowest: $(VENV_LOWEST)/.installed
	LOGSTORE_LOWEST=1 $(PY_LOWEST) -m pytest

lint: $(VENV)/.installed-lint
	$(VENV)/bin/ruff check logstore cli tests benchmarks examples
	$(VENV)/bin/mypy

stress: $(VENV)/.installed-test
	$(PY) -m pytest -m stress

bench: $(VENV)/.installed-test
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/core.py

clean:
	rm -rf $(VENV) $(VENV_LOWEST) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
