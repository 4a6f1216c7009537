# The two commands of the README. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: install kafka demo test lint unit integration golden clean bench bench-quick browser

install: $(STAMP)

# Apache Kafka's jars from Maven Central (broker/pom.xml), copied once per version into .kafka/libs/:
# the broker the tests, the demo and the benchmark start (`streamscore broker start --kind kafka`).
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' broker/pom.xml)
KAFKA_STAMP := .kafka/libs/.kafka-$(KAFKA_VERSION)

kafka: $(KAFKA_STAMP)

# The tests need the jars unless they run on another kind of broker (STREAMSCORE_TEST_BROKER=noida: no Java).
TEST_BROKER_DEPS := $(if $(filter noida tansu,$(STREAMSCORE_TEST_BROKER)),,kafka)

$(KAFKA_STAMP): broker/pom.xml
	@command -v mvn >/dev/null || { echo "make kafka needs Maven (mvn) and Java 17+; without them use a noida broker (--kind noida, STREAMSCORE_TEST_BROKER=noida)"; exit 2; }
	rm -rf .kafka/libs.new
	mvn --batch-mode --quiet -f broker/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/.kafka/libs.new
	rm -rf .kafka/libs && mv .kafka/libs.new .kafka/libs  # all or nothing: a failed fetch keeps the old jars
	touch $@

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP) kafka
	$(BIN)/streamscore demo

test: $(STAMP) $(TEST_BROKER_DEPS) lint browser
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

integration: $(STAMP) $(TEST_BROKER_DEPS) browser
	$(BIN)/python -m pytest -m integration

clean:
	rm -rf $(VENV) .kafka .data .pytest_cache .mypy_cache .ruff_cache

golden: $(STAMP)
	$(BIN)/python -m tests.golden

# The benchmark (bench/): figures against same-run baselines, bench/results/latest.json and latency.png.
# Its extra (matplotlib, for the chart) goes into the same .venv, behind a stamp of its own.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) kafka
	$(BIN)/python -m bench

bench-quick: $(BENCH_STAMP) kafka
	$(BIN)/python -m bench --quick
