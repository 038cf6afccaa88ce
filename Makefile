# Two commands for a newcomer: `make book` and `make test` (see README.md).
# Both create the environment on first use: the active virtualenv/conda env if
# one is active, otherwise ./.venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
PYTHON := python
ENV_DIR := $(or $(VIRTUAL_ENV),$(CONDA_PREFIX))
else
ENV_DIR := .venv
PYTHON := $(ENV_DIR)/bin/python
endif
STAMP := $(ENV_DIR)/.cnncourse-installed
HTML := _build/html

.PHONY: help setup data book book-strict test check-site clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(ENV_DIR)/bin/python:
	python3 -c 'import sys; assert sys.version_info >= (3, 10), "cnncourse needs Python >= 3.10"'
	python3 -m venv $(ENV_DIR)

$(STAMP): pyproject.toml constraints.txt | $(ENV_DIR)/bin/python
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -c constraints.txt -e ".[book,test]"
	touch $@

setup: $(STAMP)  ## create the environment and install cnncourse with its book and test tools

data: setup  ## put Fashion-MNIST under data/ (from Debian's package, else the internet)
	$(PYTHON) -m cnncourse.data

book: data  ## build the website into _build/html (runs every chapter, cached between builds)
	$(PYTHON) -m jupyter_book build . --builder html
	@echo "Open file://$(CURDIR)/$(HTML)/index.html"

book-strict: data  ## as `book`, re-running every chapter and turning Sphinx warnings into errors (CI)
	$(PYTHON) -m jupyter_book build . --builder html --all -W -n --keep-going \
		--config _config.yml
	@echo "Open file://$(CURDIR)/$(HTML)/index.html"

test: data  ## run the unit tests and execute every chapter in the smoke profile (pytest --nbval-lax)
	CNNCOURSE_FAST=1 $(PYTHON) -m pytest -m "not site" --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 tests book

check-site:  ## check the built website in _build/html (pages, outputs, headless Chromium)
	$(PYTHON) -m pytest -m site tests

clean:  ## remove the built book and caches (keeps .venv and data/)
	rm -rf _build .pytest_cache
