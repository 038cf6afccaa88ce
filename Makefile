# Two commands for a newcomer: `make book` and `make test` (see README.md).
# Both set up the environment on first use: the active virtualenv or conda
# environment if there is one, otherwise ./.venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV_DIR := $(or $(VIRTUAL_ENV),$(CONDA_PREFIX),.venv)
BIN := $(ENV_DIR)/bin
PYTHON := $(BIN)/python
STAMP := $(ENV_DIR)/.cnncourse-installed
HTML := _build/html
# Chapters show tqdm progress bars in Jupyter; the website has no use for them.
BOOK_ENV := TQDM_DISABLE=1

.PHONY: help setup data book book-strict test check-site gpu-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PYTHON):
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "cnncourse needs Python >= 3.10")'
	python3 -m venv $(ENV_DIR)

$(STAMP): pyproject.toml constraints.txt | $(PYTHON)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -c constraints.txt -e ".[book,test]"
	touch $@

setup: $(STAMP)  ## create the environment and install cnncourse with its book and test tools

data: setup  ## put Fashion-MNIST into data/ (from Debian's package, else the internet)
	$(PYTHON) -m cnncourse.data

book: data  ## build the website into _build/html (chapters rerun only when they change)
	$(BOOK_ENV) $(BIN)/jupyter-book build . --builder html
	@# Sphinx 7.4 never overwrites a file already in _build/html/_static, so an edited
	@# stylesheet or script of ours would not reach the site: copy them over it.
	cp -R _static/. $(HTML)/_static/
	@echo "Open file://$(CURDIR)/$(HTML)/index.html"
	@echo "(the live page runs WebAssembly and needs a server: cd $(HTML) && python -m http.server)"

book-strict: data  ## rebuild the website running every chapter, Sphinx warnings as errors (CI)
	@# _config.yml with execution forced (no cached output is reused); it sits beside
	@# _config.yml because Jupyter Book resolves relative paths from the config's folder
	$(PYTHON) -c 'import yaml; c = yaml.safe_load(open("_config.yml")); \
		c["execute"]["execute_notebooks"] = "force"; \
		yaml.safe_dump(c, open("_config.force.yml", "w"), sort_keys=False)'
	rm -rf $(HTML)/_static
	$(BOOK_ENV) $(BIN)/jupyter-book build . --builder html --all -W --keep-going \
		--config _config.force.yml; status=$$?; rm -f _config.force.yml; exit $$status
	@echo "Open file://$(CURDIR)/$(HTML)/index.html"

test: data  ## run the unit tests and execute every chapter in the smoke profile
	CNNCOURSE_FAST=1 $(PYTHON) -m pytest -m "not site" --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 tests book

check-site:  ## check the built website: pages, outputs, figures, headless Chromium
	$(PYTHON) -m pytest -m site tests

gpu-check: data  ## on a CUDA GPU: tests, chapters, benchmarks, the GPU recipe (GPU_CHECK_ARGS=--dry-run: toy size, CPU)
	$(PYTHON) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:  ## remove the built book and caches (keeps the environment and data/)
	rm -rf _build .pytest_cache
