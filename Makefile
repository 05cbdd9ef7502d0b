# mlref: `make help` lists the targets. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# make suffix -> package, and the default recipe of each app
APP_nlp := nlp_app
APP_tabular := tabular_mining
APP_vision := vision_app
APP_recsys := recsys_app
CONFIG_nlp := configs/nlp_app/sentiment.yaml
CONFIG_tabular := configs/tabular_mining/churn.yaml
CONFIG_vision := configs/vision_app/classify.yaml
CONFIG_recsys := configs/recsys_app/movielens.yaml

CONFIG ?=
ARGS ?=
RUN ?=
PYTEST_ARGS ?=
cfg = $(if $(CONFIG),$(CONFIG),$(CONFIG_$*))
# stages after train: RUN=dir alone reads the task from the run; else the recipe's latest run
run_arg = $(if $(RUN),--run $(RUN) $(if $(CONFIG),--config $(CONFIG),),--config $(cfg))

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-slow test-gpu test-browser lint clean

help: ## show this help
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}'
	@echo "  <stage>-<app>: app is one of nlp, tabular, vision, recsys; CONFIG=path ARGS='key=value ...' RUN=dir"

$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,all]'
	@touch $@

setup: $(STAMP) ## create .venv and install the project (done automatically by demo/test)

DEMO_RECIPES := \
	tabular_mining:configs/tabular_mining/churn-quick.yaml \
	tabular_mining:configs/tabular_mining/penguins.yaml \
	tabular_mining:configs/tabular_mining/house_prices-quick.yaml \
	tabular_mining:configs/tabular_mining/segments-quick.yaml \
	tabular_mining:configs/tabular_mining/rules-quick.yaml \
	nlp_app:configs/nlp_app/sentiment-quick.yaml \
	nlp_app:configs/nlp_app/ner-quick.yaml \
	vision_app:configs/vision_app/classify-quick.yaml \
	vision_app:configs/vision_app/segment-quick.yaml \
	vision_app:configs/vision_app/detect-quick.yaml \
	recsys_app:configs/recsys_app/movielens-quick.yaml

demo: $(STAMP) ## train every app's quick recipe on the embedded data, then print a report
	@set -e; for item in $(DEMO_RECIPES); do \
		echo; echo "==> $(PY) -m $${item%%:*} train --config $${item#*:}"; \
		$(PY) -m $${item%%:*} train --config $${item#*:}; \
	done
	$(PY) -m shared.report

test: $(STAMP) ## the fast test suite (what CI runs)
	$(PY) -m pytest -q -m "not slow and not gpu and not browser" $(PYTEST_ARGS)

test-slow: $(STAMP) ## quality floors, DDP on 2 CPU processes, resume
	$(PY) -m pytest -q -m "slow" $(PYTEST_ARGS)

test-gpu: $(STAMP) ## CUDA / mixed-precision tests (needs a GPU)
	$(PY) -m pytest -q -m "gpu" $(PYTEST_ARGS)

# Debian's chromium and a CJK font from apt (as root, else with sudo), Playwright from PyPI; Playwright's
# own browser download is never used (the tests launch the system chromium)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-browser: $(STAMP) ## the demo pages in a real browser (installs chromium, CJK fonts, playwright if missing)
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null || ! fc-list :lang=zh | grep -q .; then \
		echo "==> apt-get install chromium fonts-noto-cjk"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-cjk; \
	fi
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q "playwright>=1.45"
	$(PY) -m pytest -q -m browser tests/browser $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	$(PY) -m ruff check .

preprocess-%: $(STAMP) ## preprocess-<app>: validate, clean, split, cache the data
	$(PY) -m $(APP_$*) preprocess --config $(cfg) $(ARGS)

train-%: $(STAMP) ## train-<app>: train (preprocesses first if needed); writes runs/<app>/<task>/latest
	$(PY) -m $(APP_$*) train --config $(cfg) $(ARGS)

eval-%: $(STAMP) ## eval-<app>: evaluate a run (RUN=dir, default latest) on its test split
	$(PY) -m $(APP_$*) evaluate $(run_arg) $(ARGS)

predict-%: $(STAMP) ## predict-<app>: batch-score a file: ARGS='--input f --output g'
	$(PY) -m $(APP_$*) predict $(run_arg) $(ARGS)

export-%: $(STAMP) ## export-<app>: ONNX (+ int8 where supported)
	$(PY) -m $(APP_$*) export $(run_arg) $(ARGS)

compare-%: $(STAMP) ## compare-<nlp|recsys>: train every model of the recipe on one split; a ranked table
	$(PY) -m $(APP_$*) compare --config $(cfg) $(ARGS)

serve-%: $(STAMP) ## serve-<app>: REST on 127.0.0.1:8000 (ARGS='--host 0.0.0.0 --port 9000')
	$(PY) -m $(APP_$*) serve $(run_arg) $(ARGS)

bench-%: $(STAMP) ## bench-<app>: benchmarks side by side; results in bench/results/
	$(PY) -m bench.$* $(ARGS)

clean: ## remove runs, caches and generated data (keeps .venv)
	rm -rf runs data/cache data/generated bench/results .pytest_cache
