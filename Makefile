# Every target builds its own virtual environment first; nothing needs to be pre-installed.
# The environment is installed from the lock file (exact versions, checked by hash), then the
# archiver itself on top of it without resolving anything again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/dev.lock
LOCK_TOOLS := .venv-lock
# checkov pins boto3 and other libraries to versions that clash with aioboto3's, so it lives
# in a venv of its own; cfn-lint has no such pins and is in the dev extra.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed
CHECKOV_VERSION := 3.3.30
TEMPLATE := infra/template.yaml

.PHONY: demo test bench lint lint-infra lambda-zip check lock clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

$(INFRA_STAMP):
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(INFRA_STAMP)

demo: $(STAMP)
	$(BIN)/archiver demo

# pytest-xdist: one test process per CPU (`-n auto`); a worker that finishes early takes queued
# tests from the others (worksteal), so the slow Lambda-sandbox and crash tests do not end last.
test: lint
	$(BIN)/python -m pytest -n auto --dist worksteal

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP) lint-infra
	$(BIN)/ruff check src tests bench infra
	$(BIN)/ruff format --check src tests bench infra
	$(BIN)/mypy
	$(BIN)/lint-imports

# The SAM template, offline: cfn-lint (schemas, SAM resources, the state machine definition)
# and checkov (security; every skipped check carries its reason in the template's Metadata).
lint-infra: $(STAMP) $(INFRA_STAMP)
	$(BIN)/cfn-lint $(TEMPLATE)
	$(INFRA_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f $(TEMPLATE)

# dist/lambda.zip for the arm64 Python 3.12 runtime (see infra/build_lambda_zip.py).
lambda-zip: $(STAMP)
	$(BIN)/python infra/build_lambda_zip.py --out dist/lambda.zip

check: lint test

# Refresh the lock after changing dependencies in pyproject.toml (uv runs in a venv of its own).
lock:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet uv
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --quiet -o $(LOCK)

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) $(INFRA_VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
