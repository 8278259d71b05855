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
# carry two locations end to end through the shipped rules, amtool checks the
# Alertmanager example, prometheus-pushgateway receives the Kubernetes CronJob's metrics.
# Installed when missing (as root); tests skip,
# saying why, if not.
DEBIAN_TEST_PACKAGES ?= ffmpeg nginx websocketd chromium redis-server prometheus dnsmasq-base tmux caddy \
	prometheus-node-exporter prometheus-alertmanager prometheus-pushgateway

.PHONY: demo test lint check bench clean debian-deps debian-bench-deps debian-install dist image image-deps image-base image-check

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
DEBIAN_BENCH_PACKAGES ?= prometheus-blackbox-exporter caddy

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
	$(BIN)/mkdocs build --strict --site-dir build/site

check: lint test

# Benchmarks print figures beside curl's and blackbox_exporter's; timings depend on the
# machine, so they are never part of `make test`.
bench: $(VENV)/.installed-test debian-bench-deps
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/fidelity.py
	$(BIN)/python bench/httpx_floor.py
	$(BIN)/python bench/report_scale.py
	$(BIN)/python bench/grpc_cpu.py
	$(BIN)/python bench/http3.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Release files (docs/install.md): a wheel and an sdist in dist/, checked by twine.
dist: $(VENV)/.installed-test
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The container image (docs/install.md). A Debian base made here with mmdebstrap (no
# registry image is needed), the wheel and a wheelhouse of its dependencies as the build
# context, so the build fetches nothing. Minutes and root: never part of `make test`.
VERSION      := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/synthprobe/__init__.py)
IMAGE        ?= synthprobe
IMAGE_BASE   ?= localhost/synthprobe-base:bookworm
IMAGE_ISOLATION ?= chroot
DEBIAN_MIRROR ?= http://deb.debian.org/debian
DEBIAN_SECURITY_MIRROR ?= http://deb.debian.org/debian-security
DEBIAN_IMAGE_PACKAGES ?= podman mmdebstrap

image-deps:
	@$(MAKE) --no-print-directory debian-install PACKAGES="$(DEBIAN_IMAGE_PACKAGES)"

# Remade only when missing: `podman rmi $(IMAGE_BASE)` to take the latest Debian updates.
image-base: image-deps
	@if podman image exists $(IMAGE_BASE); then echo "$(IMAGE_BASE) exists"; else \
	  mkdir -p build && \
	  mmdebstrap --mode=root --variant=minbase \
	    --include=python3,python3-venv,ca-certificates,netbase,tzdata bookworm build/base.tar \
	    "deb $(DEBIAN_MIRROR) bookworm main" "deb $(DEBIAN_MIRROR) bookworm-updates main" \
	    "deb $(DEBIAN_SECURITY_MIRROR) bookworm-security main" && \
	  podman import --change 'CMD ["/bin/sh"]' build/base.tar $(IMAGE_BASE) && \
	  rm -f build/base.tar; fi

image: dist image-base
	$(BIN)/pip wheel --quiet --wheel-dir dist/wheelhouse dist/synthprobe-$(VERSION)-py3-none-any.whl
	podman build --isolation $(IMAGE_ISOLATION) --build-arg BASE=$(IMAGE_BASE) \
	  --build-arg VERSION=$(VERSION) -f Containerfile -t $(IMAGE):$(VERSION) dist/
	@$(MAKE) --no-print-directory image-check

# The finished image's own files, run in a chroot of it as its user: where `podman run`
# cannot start containers (no rlimits in some sandboxes), this still proves the image.
image-check:
	@mnt=$$(podman image mount $(IMAGE):$(VERSION)) && trap 'podman image unmount $(IMAGE):$(VERSION) >/dev/null' EXIT && \
	  user=$$(podman image inspect --format '{{.Config.User}}' $(IMAGE):$(VERSION)) && \
	  entry=$$(podman image inspect --format '{{index .Config.Entrypoint 0}}' $(IMAGE):$(VERSION)) && \
	  echo "image $(IMAGE):$(VERSION): user $$user, entrypoint $$entry" && \
	  chroot --userspec=$$user $$mnt env HOME=/home/probe $$entry --version && \
	  { chroot --userspec=$$user $$mnt env HOME=/home/probe sh -c "cd /home/probe && $$entry demo --format quiet"; \
	    code=$$?; [ $$code -eq 1 ] || { echo "probe demo exited $$code, expected 1"; exit 1; }; } && \
	  echo "image-check: probe --version and probe demo ran from the image"
