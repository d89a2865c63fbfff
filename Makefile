# Two entry points for a fresh machine: `make run` and `make test` (README).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
REGISTRY_PORT ?= 8100
export EZLA_REGISTRY_TOKEN_FILE ?= var/registry-token
export EZLA_REGISTRY_READ_TOKEN_FILE ?= var/registry-read-token

.PHONY: run test test-deps cluster-deps bench-deps lint type bench cluster demo install install-test clean

$(BIN)/ezla: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(BIN)/ezla
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/ezla
install-test: $(VENV)/.test-installed

var/registry-token var/registry-read-token:
	@mkdir -p var && umask 077 && $(BIN)/python -c "import secrets;print(secrets.token_urlsafe(32))" > $@

run: $(BIN)/ezla var/registry-token var/registry-read-token
	$(BIN)/ezla pki init
	$(BIN)/ezla db upgrade
	$(BIN)/ezla registry db-upgrade
	@echo "ezla node:     http://$(HOST):$(PORT)  (OpenAPI: http://$(HOST):$(PORT)/schema)"
	@echo "ezla registry: http://$(HOST):$(REGISTRY_PORT)"
	@# Ctrl-C reaches both servers (same terminal): they drain and stop; then this shell ends 0.
	@# On any other exit (one server failed), the other is stopped too.
	@trap 'kill $$(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
	  $(BIN)/ezla registry serve --host $(HOST) --port $(REGISTRY_PORT) & \
	  EZLA_REGISTRY_URL=http://$(HOST):$(REGISTRY_PORT) $(BIN)/ezla serve --host $(HOST) --port $(PORT) & \
	  wait -n; status=$$?; kill $$(jobs -p) 2>/dev/null; wait; exit $$status

# What the tests run besides Python (peers, the front, the browser, pg_auto_failover for the twins'
# databases) on a new Debian machine of this kind, as command:package; PostgreSQL itself is one of
# the machine's services (.ci/run starts it if it is down). `make cluster` needs the last two.
CLUSTER_TOOLS := haproxy:haproxy pg_autoctl:postgresql-15-auto-failover
TEST_TOOLS := xmlsec1:xmlsec1 softhsm2-util:softhsm2 node:nodejs npm:npm openssl:openssl chromium:chromium iptables:iptables curl:curl jq:jq $(CLUSTER_TOOLS)
define install_missing
	@missing=""; for pair in $(1); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "$(2) needs:$$missing -- install them with: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

test-deps:
	$(call install_missing,$(TEST_TOOLS),make test)

cluster-deps:
	$(call install_missing,$(CLUSTER_TOOLS),make cluster)

test: test-deps $(VENV)/.test-installed
	$(BIN)/ruff check ezla tests bench tools
	$(BIN)/mypy ezla tools
	$(BIN)/lint-imports
	# Two phases: everything on both cores (each file in one worker), then the tests that measure
	# failovers, recovery or latency (marked serial), one at a time so no other test skews them.
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not serial" tests
	# The CA and issuance suites once more with every CA key in a SoftHSM2 token (PKCS#11); the
	# keys are what changes, so one database engine suffices here.
	EZLA_TEST_PKCS11=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not serial" -k "not postgresql" \
	  tests/unit/ca tests/unit/test_long_term.py tests/integration/ca tests/integration/issuance
	$(BIN)/pytest -q -p no:cacheprovider -m serial tests

lint: $(VENV)/.test-installed
	$(BIN)/ruff check ezla tests bench tools
	$(BIN)/lint-imports
	$(BIN)/ruff format --check ezla tests bench tools

type: $(VENV)/.test-installed
	$(BIN)/mypy ezla tools

bench-deps:
	$(call install_missing,$(CLUSTER_TOOLS) wrk:wrk softhsm2-util:softhsm2,make bench)

bench: bench-deps $(VENV)/.test-installed
	$(BIN)/python bench/verify_bench.py
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/load_bench.py --hostile
	$(BIN)/python bench/inbox_bench.py
	$(BIN)/python bench/ca_bench.py

NODES ?= 2
cluster: cluster-deps $(BIN)/ezla
	$(BIN)/python -m tools.cluster --nodes $(NODES)

demo: $(BIN)/ezla
	$(BIN)/ezla demo

clean:
	rm -rf $(VENV) var .pytest_cache
