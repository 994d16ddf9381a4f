# Two commands for a fresh clone:
#   make demo   — install, migrate and serve on the embedded default (SQLite + in-process broker)
#   make test   — install and pass the whole suite (lint, types, unit, contract, integration, e2e)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium
# The suite runs on this many processes (pytest-xdist); every test has its own databases, queue
# names and browser context, so they never meet.  TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install browser lint typecheck unit bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,sim]"
	touch $(STAMP)

install: $(STAMP)

# The console's browser tests drive Debian's Chromium (Playwright launches that executable;
# nothing is downloaded from a browser vendor).
$(CHROMIUM):
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver

browser: $(CHROMIUM)

demo: $(STAMP)
	$(BIN)/centralita demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy core storage broker identity router channels centralita

# Bytecode is cached even where the environment says not to: the suite starts the CLI and the
# engine as subprocesses hundreds of times, and each would compile every module again.
test: lint typecheck browser
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --only ceilings,stripped,routing

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
