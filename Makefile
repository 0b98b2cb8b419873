# btmon-tui — `make demo` runs the demo fleet, `make test` runs every check and test.
# Both install what they need first (Debian/Ubuntu packages via apt, then a Python venv).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := dbus tmux libportaudio2 pulseaudio pulseaudio-utils \
	libasound2-plugins alsa-utils python3-venv python3-dev libdbus-1-dev libglib2.0-dev \
	pkg-config build-essential librsvg2-bin

.PHONY: setup system-packages demo test check lint typecheck imports pytest screenshots bench lock clean

setup: system-packages $(STAMP)

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

demo: setup
	$(BIN)/btmon-tui --demo

test: setup check

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
