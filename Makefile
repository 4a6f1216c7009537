# The two commands of the README. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: install demo test lint unit integration golden clean bench bench-quick browser

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streamscore demo

test: $(STAMP) lint browser
	$(BIN)/python -m pytest

# The dashboard's browser test drives Debian's headless Chromium; install it when missing (sudo only if not root).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

integration: $(STAMP) browser
	$(BIN)/python -m pytest -m integration

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

golden: $(STAMP)
	$(BIN)/python -m tests.golden

# The benchmark (bench/): figures against same-run baselines, bench/results/latest.json and latency.png.
# Its extra (matplotlib, for the chart) goes into the same .venv, behind a stamp of its own.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick
