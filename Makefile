# Two commands: `make run` (fresh machine → demo served) and `make test` (the whole suite).
VENV   ?= .venv
PYTHON ?= python3
PORT   ?= 5000
HOST   ?= 127.0.0.1
BIN     = $(VENV)/bin

.PHONY: install run test bench bench-peer bench-scale bench-sweep bench-steps chromium spa

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

## make run: set up the database, keys, demo users and demo relying party, then serve.
## make run FAST=1: « mode démonstration accélérée », short lifetimes so that login cases 2 (expired code) and
## 3 (code quota) and forgotten-password case 2 (mail quota) can be tried in minutes. Never the default.
FAST ?=
FAST_SETTINGS = IDP_CODE_LIFETIME=60 IDP_CODE_QUOTA_BLOCK=120 IDP_LOCK_DURATION=60 \
                IDP_RESET_MAIL_QUOTA_BLOCK=120 IDP_RESET_LINK_LIFETIME=300
RUN_ENV = $(if $(filter 1 yes true,$(FAST)),$(FAST_SETTINGS)) IDP_DEMO=1 IDP_ISSUER=http://$(HOST):$(PORT)

run: install
	$(RUN_ENV) $(BIN)/idp demo
	@echo
	@echo "  Discovery: http://$(HOST):$(PORT)/.well-known/openid-configuration"
	@echo "  Command:   $(abspath $(BIN))/idp  (the idp command of this checkout; or: . $(VENV)/bin/activate)"
	@$(if $(filter 1 yes true,$(FAST)),echo "  Mode démonstration accélérée (FAST=1): $(FAST_SETTINGS)",true)
	@echo
	$(RUN_ENV) $(BIN)/idp run --host $(HOST) --port $(PORT)

## make test: the whole suite (PostgreSQL too when IDP_TEST_DATABASE_URL is set).
test: install chromium spa
	$(BIN)/pytest

## Debian's Chromium for the browser tests (never a downloaded browser).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ -z "$$IDP_CHROMIUM" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Chromium: sudo apt-get install chromium" >&2; exit 1; fi; fi

## The browser tests' npm packages (pinned by package-lock.json), git-ignored: oidc-client-ts, the browser
## relying-party library of the SPA test, and axe-core, the accessibility engine (tests/browser/axe.py).
SPA_DIR = tests/browser/spa

spa: $(SPA_DIR)/node_modules/.package-lock.json

$(SPA_DIR)/node_modules/.package-lock.json: $(SPA_DIR)/package.json $(SPA_DIR)/package-lock.json
	cd $(SPA_DIR) && npm ci --no-audit --no-fund --silent

## make bench: load benchmark (bench/run.py): idp serve (granian) on core 0, 16 clients on core 1, production Argon2.
## BACKEND=postgresql for PostgreSQL (database bench_h, recreated), BENCH_DATABASE_URL=... for another one;
## BENCH_ARGS="--duration 20 --clients 64" for the rest (bench/run.py --help).
BACKEND ?= sqlite
BENCH_DATABASE_URL ?=
BENCH_ARGS ?=

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

bench: $(BIN)/.bench-installed
	taskset -c 1 $(BIN)/python bench/run.py --database $(or $(BENCH_DATABASE_URL),$(BACKEND)) $(BENCH_ARGS)

## make bench-peer: the same load on the provider and on panva's oidc-provider (bench/peer/), with the ratios.
bench-peer: $(BIN)/.bench-installed
	cd bench/peer && npm install --no-audit --no-fund --silent
	taskset -c 1 $(BIN)/python bench/run.py --target both --database $(or $(BENCH_DATABASE_URL),$(BACKEND)) $(BENCH_ARGS)

## make bench-scale: the scenarios on 10k, then on 1M filler accounts and as many live tokens (bench/seed.py),
## each on a freshly recreated database, printed side by side; SCALE=10k,100k,1M for other sizes.
SCALE ?= 10k,1M

bench-scale: $(BIN)/.bench-installed
	taskset -c 1 $(BIN)/python bench/run.py --database $(or $(BENCH_DATABASE_URL),$(BACKEND)) --scale $(SCALE) $(BENCH_ARGS)

## make bench-sweep: the scenarios at 4, 16 and 64 concurrent clients, side by side; CLIENTS=... for others.
CLIENTS ?= 4,16,64

bench-sweep: $(BIN)/.bench-installed
	taskset -c 1 $(BIN)/python bench/run.py --database $(or $(BENCH_DATABASE_URL),$(BACKEND)) --clients $(CLIENTS) $(BENCH_ARGS)

## make bench-steps: in-process timings of each step of a login (scripts/bench.py).
bench-steps: install
	$(BIN)/python scripts/bench.py
