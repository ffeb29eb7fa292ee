# teiji — the commands a newcomer needs. Everything runs from a local virtualenv (.venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test lint typecheck unit iac package bench clean

help:
	@echo "make install  create .venv with teiji and its development tools (minutes on a fresh clone)"
	@echo "make demo     run a simulated week of ticks on the embedded AWS emulation (no account needed)"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make package  build the Lambda zip (dist/teiji-lambda.zip) without Docker"
	@echo "make bench    run the scale benchmark and write bench/results.json"

# Progress: one numbered line per package pip collects (about 130 on a fresh clone), through
# bash for pipefail, so a failing pip still fails the build.
$(STAMP): pyproject.toml
	@echo "==> [1/3] creating the virtualenv $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] upgrading pip"
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> [3/3] installing teiji and its development tools (a few minutes on a fresh clone)"
	@bash -o pipefail -c '$(BIN)/pip install --progress-bar off -e ".[dev]" | awk \
		"/^Collecting/ { n++; printf \"  %3d %s\\n\", n, \$$2; fflush() } \
		 /^Successfully installed/ { print \"  installed\", NF - 2, \"packages\" }"'
	touch $(STAMP)
	@echo "==> ready: run '. $(VENV)/bin/activate' to put teiji on your PATH"

install: $(STAMP)

demo: $(STAMP)
	@echo "==> a week of real ticks on an in-memory AWS (the progress line is on stderr)"
	$(BIN)/teiji demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n auto

test: lint typecheck unit iac

package: $(STAMP)
	$(BIN)/python infra/build_lambda.py

# Terraform checks. checkov pins many libraries, so it lives in its own virtualenv.
IAC_VENV  := .venv-iac
IAC_STAMP := $(IAC_VENV)/.installed

# Terraform never downloads here: the AWS provider comes from a local mirror (the first of these
# that exists, or TF_PLUGIN_DIR=...), and without one, validate and test are skipped.
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins $(HOME)/.terraform.d/plugins \
	$(HOME)/.local/share/terraform/plugins /usr/local/share/terraform/plugins \
	/usr/share/terraform/plugins))
TF_DIRS  := infra $(wildcard infra/modules/*) $(wildcard infra/examples/*)
TF_TESTS := infra infra/modules/target-account-role
TF       := TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 terraform

$(IAC_STAMP):
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install --quiet --upgrade pip
	$(IAC_VENV)/bin/pip install --quiet "checkov>=3.2,<4"
	touch $(IAC_STAMP)

iac: $(IAC_STAMP)
	@set -e; \
	if ! command -v terraform >/dev/null 2>&1; then \
		echo "terraform not found: skipping terraform fmt, validate and test"; \
	else \
		$(TF) fmt -check -recursive infra && echo "terraform fmt: infra is formatted"; \
		if [ -z "$(TF_PLUGIN_DIR)" ] || [ ! -d "$(TF_PLUGIN_DIR)/registry.terraform.io/hashicorp/aws" ]; then \
			echo "no local provider mirror with hashicorp/aws (looked in /opt/tf-plugins and ~/.terraform.d/plugins; set TF_PLUGIN_DIR): skipping terraform validate and test"; \
		else \
			for dir in $(TF_DIRS); do \
				$(TF) -chdir=$$dir init -backend=false -input=false -plugin-dir=$(TF_PLUGIN_DIR) >/dev/null; \
				printf 'terraform validate %s: ' $$dir; $(TF) -chdir=$$dir validate -no-color; \
			done; \
			for dir in $(TF_TESTS); do \
				echo "terraform test $$dir (mock provider)"; $(TF) -chdir=$$dir test -no-color; \
			done; \
		fi; \
	fi
	$(IAC_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform --directory infra

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python -m bench.wake
	$(BIN)/python -m bench.wake_keep

clean:
	rm -rf $(VENV) .venv-iac dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
