# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv with the machine's python3 and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian programs the tests drive: ffmpeg makes live HLS, nginx serves it and speaks
# HTTP/2 over TLS, websocketd runs a WebSocket echo, chromium renders the status page,
# redis-server is a real TCP service, promtool (prometheus) tests the alert rules,
# dnsmasq (dnsmasq-base: the program without a system service) is a real DNS server,
# tmux is a real terminal for `probe watch`; node_exporter, Prometheus and Alertmanager
# carry two locations end to end through the shipped rules.
# Installed when missing (as root); tests skip,
# saying why, if not.
DEBIAN_TEST_PACKAGES ?= ffmpeg nginx websocketd chromium redis-server prometheus dnsmasq-base tmux \
	prometheus-node-exporter prometheus-alertmanager

.PHONY: demo test lint check bench clean debian-deps debian-bench-deps debian-install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-demo

# `probe demo` exits 1 by design: its platform has broken parts to show every class.
demo: $(VENV)/.installed-demo
	$(BIN)/probe demo || [ $$? -eq 1 ]

# The peer `make bench` compares with, beside curl.
DEBIAN_BENCH_PACKAGES ?= prometheus-blackbox-exporter

debian-deps:
	@$(MAKE) --no-print-directory debian-install PACKAGES="$(DEBIAN_TEST_PACKAGES)"

debian-bench-deps:
	@$(MAKE) --no-print-directory debian-install PACKAGES="$(DEBIAN_BENCH_PACKAGES)"

debian-install:
	@if [ -n "$(PACKAGES)" ]; then \
	  missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else echo "not root: cannot install$$missing (tests that need them will skip)"; fi; \
	  fi; \
	fi

test: $(VENV)/.installed-test debian-deps
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

check: lint test

# Benchmarks print figures beside curl's and blackbox_exporter's; timings depend on the
# machine, so they are never part of `make test`.
bench: $(VENV)/.installed-test debian-bench-deps
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/fidelity.py
	$(BIN)/python bench/httpx_floor.py
	$(BIN)/python bench/report_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
