# eventflow: every target builds what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAGE ?= dev
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: venv run test lint format clean bench bench-quick browser

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) -m localcloud up

# One worker per core; a test file's tests stay on one worker, so its fixtures
# are built once. TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= auto

test: venv checkov-venv browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

# The console's browser tests (tests/console) drive Debian's chromium through
# Playwright; Playwright's own browser download needs the internet.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "tests/console need Debian's chromium: sudo apt-get install -y chromium" >&2; exit 1; \
	fi

# Benchmarks (benchmarks/): writes benchmarks/results.json, report.md and plots/.
bench: venv
	$(PY) -m benchmarks

bench-quick: venv
	$(PY) -m benchmarks --quick --out out/bench-quick

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis out

# --- deploy and package (owned by infra/; see docs/deploy.md) ---------------
.PHONY: package package-terraform deploy destroy checkov-venv

package: venv
	$(PY) -m infra package --stage $(STAGE) --format cloudformation

package-terraform: venv
	$(PY) -m infra package --stage $(STAGE) --format terraform

deploy: venv
	$(PY) -m infra deploy --stage $(STAGE)

destroy: venv
	$(PY) -m infra destroy --stage $(STAGE)

# checkov pins boto3 & co. against requirements-dev.txt, so it gets its own
# virtualenv; tests/infra/test_checkov.py runs .venv-checkov/bin/checkov.
CHECKOV_VENV ?= .venv-checkov

$(CHECKOV_VENV)/.installed: requirements-checkov.txt constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt -c constraints-checkov.txt
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed
