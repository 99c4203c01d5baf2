# Every target is idempotent: re-running skips what is already in place.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(or $(FUNNEL_DATA_DIR),data)
DEMO_USERS ?= 20000
# Point DEMO_CSV at a directory of Kaggle-style CSVs to demo on your own data instead of generated data.
DEMO_CSV ?=
# `make replay` (in a second terminal while `make demo` serves): the demo data as live events.
REPLAY_RATE ?= 50
REPLAY_URL ?= http://$(or $(FUNNEL_HOST),127.0.0.1):$(or $(FUNNEL_PORT),8000)
# Once the gateway requires credentials: a file holding an admin API key or JWT (`funnelgate create-key`).
REPLAY_CREDENTIAL_FILE ?=
FG := FUNNEL_DATA_DIR=$(DATA_DIR) $(BIN)/funnelgate

.PHONY: install ensure-redis ensure-npm ensure-chromium install-nginx demo demo-data replay test lint bench schema clean

NODE_TOOLS := tests/node
WEB_ASSETS := gateway/web/static

install: $(VENV)/.installed ensure-redis ensure-chromium \
	$(NODE_TOOLS)/node_modules/.package-lock.json $(WEB_ASSETS)/node_modules/.package-lock.json

# npm packages pinned by a lockfile, installed again only when package-lock.json changes:
# - tests/node: the reference GraphQL clients the suite runs against a live app (graphql-http's audit,
#   graphql-ws); those tests skip where Node cannot run (missing, or older than 20);
# - gateway/web/static: GraphiQL and React, which the gateway serves (no build step); without them
#   GraphiQL answers 503 naming this command, the dashboard works.
%/node_modules/.package-lock.json: %/package-lock.json | ensure-npm
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error --prefix $* >/dev/null && touch $@; \
	else \
		echo "npm not found: $* not installed. Install Node.js >= 20 and npm, then: npm ci --prefix $*" >&2; \
	fi

# npm for the two lockfiles above: Debian's when missing (as root with apt). Not fatal: without it the
# steps above say what is not installed and the tests that need it skip, saying why.
ensure-npm:
	@if command -v npm >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing npm with apt-get (GraphiQL's assets, the reference GraphQL clients)"; \
		{ apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq npm >/dev/null; } \
			|| echo "npm could not be installed: GraphiQL's assets and the Node client tests will be missing" >&2; \
	else \
		echo "npm is not installed. To install GraphiQL's assets and run the Node client tests:  sudo apt-get install -y npm" >&2; \
	fi

# Debian's chromium for the browser tests (tests/browser, Playwright drives it through executable_path;
# never `playwright install`). Not fatal: without it those tests skip and the summary says so.
ensure-chromium:
	@if [ -n "$$FUNNEL_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium with apt-get (for the browser tests)"; \
		{ apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null; } \
			|| echo "chromium could not be installed: the browser tests will skip" >&2; \
	else \
		echo "chromium is not installed: the browser tests will skip. To run them:  sudo apt-get install -y chromium" >&2; \
	fi

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "funnelgate needs Python >= 3.11 (PYTHON=$(PYTHON) is older)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

ensure-redis:
	@if command -v redis-server >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server with apt-get"; \
		apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq redis-server >/dev/null; \
	else \
		echo "redis-server is not installed. Run:  sudo apt-get install -y redis-server" >&2; \
		echo "(or set FUNNEL_REDIS_URL to an existing Redis)" >&2; \
		exit 1; \
	fi

# nginx for the replica tests and bench (two `funnelgate serve` behind it, tests/test_replicas.py); the
# tests skip, saying so, without it. Not part of install: only the scale-out tests need it.
install-nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing nginx with apt-get"; \
		apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq nginx >/dev/null; \
	else \
		echo "nginx is not installed (the replica tests will skip). Run:  sudo apt-get install -y nginx" >&2; \
	fi

# The data of the demo: DEMO_CSV, or a generated sample. DATA_DIR/.demo-ready records which source
# (absolute path and a digest of its CSV files) was ingested and embedded: a changed source is
# ingested again, an unchanged one is not.
demo-data: install
	@set -e; \
	csv="$(DEMO_CSV)"; \
	if [ -z "$$csv" ]; then \
		csv=$(DATA_DIR)/sample-csv-$(DEMO_USERS); \
		if [ ! -f "$$csv/.complete" ]; then \
			$(FG) generate --users $(DEMO_USERS) --seed 7 --out "$$csv"; \
			touch "$$csv/.complete"; \
		fi; \
	fi; \
	source="$$($(FG) fingerprint "$$csv")"; \
	if [ "$$(cat $(DATA_DIR)/.demo-ready 2>/dev/null)" = "$$source" ]; then \
		echo "demo data: up to date with $$source"; \
	else \
		rm -f $(DATA_DIR)/.demo-ready; \
		$(FG) ingest --csv-dir "$$csv"; \
		$(FG) embed; \
		printf '%s\n' "$$source" > $(DATA_DIR)/.demo-ready; \
	fi

demo: demo-data
	$(FG) serve

replay: install
	$(BIN)/funnelgate replay --csv-dir $(or $(DEMO_CSV),$(DATA_DIR)/sample-csv-$(DEMO_USERS)) --rate $(REPLAY_RATE) --url $(REPLAY_URL) \
		$(if $(REPLAY_CREDENTIAL_FILE),--credential-file "$(REPLAY_CREDENTIAL_FILE)")

test: install install-nginx
	$(BIN)/python -m pytest -q --durations=15

lint: install
	$(BIN)/ruff check gateway schema resolvers loaders tests bench
	$(BIN)/ruff format --check gateway schema resolvers loaders tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

schema: install
	$(BIN)/python -m gateway.web.schema_export

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(NODE_TOOLS)/node_modules $(WEB_ASSETS)/node_modules test-artifacts
