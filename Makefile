# btmon-tui — `make demo` runs the demo fleet, `make test` runs every check and test.
# Both install what they need first (Debian/Ubuntu packages via apt, then a Python venv).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := dbus tmux libportaudio2 pulseaudio pulseaudio-utils \
	libasound2-plugins alsa-utils python3-venv python3-dev libdbus-1-dev libglib2.0-dev \
	pkg-config build-essential librsvg2-bin tshark openssh-client
# Only the tests need these (a private sshd for the remote-host tests; PipeWire for
# `make test-pipewire`): `make demo` does not install them on a desktop, where
# pipewire-pulse would compete with its audio server at the next login.
TEST_APT_PACKAGES := openssh-server
PIPEWIRE_APT_PACKAGES := pipewire pipewire-pulse wireplumber

.PHONY: setup system-packages test-packages test-pipewire demo demo-hosts test check lint typecheck imports pytest screenshots bench lock clean

setup: system-packages $(STAMP) btmon promtool

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if ! command -v apt-get >/dev/null; then echo "install these packages:$$missing"; exit 1; fi; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "installing:$$missing"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "btmon-tui needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# btmon (BlueZ's monitor, a reference for `snoop`): installing the bluez package would pull
# systemd upgrades and a daemon, so only /usr/bin/btmon is unpacked from it into .tools/bin
# (it links libglib2.0-0 and libudev1 only). A btmon already on PATH is used as it is.
BTMON := .tools/bin/btmon
.PHONY: btmon
btmon: $(BTMON)

$(BTMON):
	@if command -v btmon >/dev/null; then mkdir -p $(@D) && ln -sf "$$(command -v btmon)" $@; exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	tmp=$$(mktemp -d) && cd $$tmp && \
	{ apt-get download bluez 2>/dev/null || { $$SUDO apt-get update -qq && apt-get download bluez; }; } && \
	dpkg-deb -x bluez_*.deb unpacked && install -D -m 755 unpacked/usr/bin/btmon $(CURDIR)/$@ && \
	cd / && rm -rf $$tmp && $(CURDIR)/$@ --version

# promtool (Prometheus' checker, for the tests of deploy/ and of the exporter's names): the
# prometheus package would install and enable a Prometheus server, so only /usr/bin/promtool
# (a Go binary linking libc only) is unpacked from it into .tools/bin, as btmon is.
PROMTOOL := .tools/bin/promtool
.PHONY: promtool
promtool: $(PROMTOOL)

$(PROMTOOL):
	@if command -v promtool >/dev/null; then mkdir -p $(@D) && ln -sf "$$(command -v promtool)" $@; exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	tmp=$$(mktemp -d) && cd $$tmp && \
	{ apt-get download prometheus 2>/dev/null || { $$SUDO apt-get update -qq && apt-get download prometheus; }; } && \
	dpkg-deb -x prometheus_*.deb unpacked && install -D -m 755 unpacked/usr/bin/promtool $(CURDIR)/$@ && \
	cd / && rm -rf $$tmp && $(CURDIR)/$@ --version

demo: setup
	$(BIN)/btmon-tui --demo

# Three hosts in one view on this machine: the demo here, two more demo fleets as `stage`
# and `bar` (scripts/demo_hosts.py).
demo-hosts: setup
	$(BIN)/python scripts/demo_hosts.py

test: setup test-packages check

test-packages:
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(TEST_APT_PACKAGES)"

# Aligning on PipeWire (pipewire-pulse, WirePlumber): run alone, its timing is too noisy
# under the whole suite's load on 2 cores (tests/align/test_align_pipewire.py).
test-pipewire: setup
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(PIPEWIRE_APT_PACKAGES)"
	BTMON_PIPEWIRE=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/align/test_align_pipewire.py

check: lint typecheck imports pytest

lint:
	$(BIN)/ruff format --check core tui tests bench scripts
	$(BIN)/ruff check core tui tests bench scripts

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

pytest:
	$(BIN)/python -m pytest -q -p no:cacheprovider

screenshots: setup
	$(BIN)/python scripts/screenshots.py

bench: setup
	$(BIN)/python -m bench

# Re-resolve the locked dependency set (run after changing pyproject.toml).
lock:
	rm -rf /tmp/btmon-lock && $(PYTHON) -m venv /tmp/btmon-lock
	/tmp/btmon-lock/bin/pip install -q --upgrade pip && /tmp/btmon-lock/bin/pip install -q -e '.[dev]'
	/tmp/btmon-lock/bin/pip freeze --exclude-editable | grep -v '^btmon-tui' > requirements.lock
	rm -rf /tmp/btmon-lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
