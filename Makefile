# cnnlab tasks. `make run` is the main job, `make test` the test suite; each sets itself up.
#################################################################################
# GLOBALS                                                                       #
#################################################################################
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Lossless CIFAR-10 when the shared archive is beside the checkout; otherwise torchvision downloads it.
SHARED_CIFAR := $(abspath ../shared/data/cifar10-png.tar.gz)
SOURCE ?= $(if $(wildcard $(SHARED_CIFAR)),$(SHARED_CIFAR),cifar10)
PROFILE ?= full
SOURCE_ARG := --source $(SOURCE)
# Tests and notebooks under test read the same archive when present, else synthetic data.
TEST_SOURCE ?= $(if $(wildcard $(SHARED_CIFAR)),$(SHARED_CIFAR),fake)

.DEFAULT_GOAL := help

#################################################################################
# COMMANDS                                                                      #
#################################################################################
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

.PHONY: install
## Create .venv with the pinned dependencies and cnnlab in editable mode
install: $(VENV)/.installed

.PHONY: run
## Main job: data summary, then run every notebook (training what is missing) and export report/ and slides/
run: install
	$(VENV)/bin/cnnlab data info $(SOURCE_ARG) --profile $(PROFILE)
	$(VENV)/bin/cnnlab report $(SOURCE_ARG) --profile $(PROFILE)

.PHONY: report
## Execute the notebooks (PROFILE=...) and export report/ and slides/ (no training beyond what the notebooks do)
report: install
	$(VENV)/bin/cnnlab report $(SOURCE_ARG) --profile $(PROFILE)

.PHONY: test
## Run the tests: the package, and every notebook in the smoke profile (the lessons exported, the solutions by nbmake)
test: install
	CNNLAB_PROFILE=smoke CNNLAB_SOURCE=$(TEST_SOURCE) CNNLAB_HOME=$(CURDIR)/build/smoke \
		$(PY) -m pytest -q --durations=15 tests --nbmake notebooks/solutions

.PHONY: lab
## Open the notebooks in JupyterLab (PROFILE=quick for minutes-long training runs)
lab: install
	CNNLAB_PROFILE=$(PROFILE) CNNLAB_SOURCE=$(SOURCE) $(VENV)/bin/jupyter lab notebooks/

.PHONY: app
## Compare trained runs on your photos in a local web page: make app RUNS="runs/fast runs/efficientnet_lite0-finetune"
app: install
	$(if $(RUNS),,$(error give the run folders to compare: make app RUNS="runs/fast runs/efficientnet_lite0-finetune"))
	$(VENV)/bin/cnnlab app $(RUNS) $(if $(PORT),--port $(PORT),)

.PHONY: clean
## Remove caches and run outputs (keeps .venv)
clean:
	rm -rf data/cache runs build .pytest_cache

.PHONY: help
## Show this list
help:
	@awk '/^## /{d=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(d){split($$1,t,":"); printf "  %-10s %s\n", t[1], d}; d=""}' $(MAKEFILE_LIST)
