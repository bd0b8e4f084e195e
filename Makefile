# The README's two commands: `make run` (the bot) and `make test` (the whole suite).
# Both build .venv from the pinned requirements.lock on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint typecheck pytest docs bench bench-foundation bench-jobs bench-moderation bench-marketplace bench-reliability bench-scoring bench-studio bench-flows bench-calendar lock clean messages

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps -e . --config-settings editable_mode=compat
	touch $@

run: $(VENV)/.installed
	$(BIN)/mona

# The OBS specs start a real OBS Studio headless under Xvfb: install Debian's packages once when missing
# (as root here; through sudo when not root and sudo exists).
SUDO := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || echo sudo)

$(VENV)/.obs-studio:
	if ! command -v obs >/dev/null || ! command -v Xvfb >/dev/null; then \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends obs-studio xvfb xauth; \
	fi
	mkdir -p $(@D) && touch $@

test: $(VENV)/.installed $(VENV)/.obs-studio
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

# Benchmarks print figures and ratios (never asserted in tests); `make bench` runs them all.
bench: bench-foundation bench-jobs bench-moderation bench-marketplace bench-reliability bench-scoring bench-studio bench-flows bench-calendar

bench-foundation: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_foundation.py

bench-jobs: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_jobs.py

bench-moderation: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_moderation.py

bench-marketplace: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_marketplace.py

bench-reliability: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_reliability.py

bench-scoring: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_scoring.py

# Starts real headless OBS Studios (obs-studio and Xvfb, as the OBS specs do).
bench-studio: $(VENV)/.installed $(VENV)/.obs-studio
	$(BIN)/python benchmarks/bench_studio.py

# A private redis-server and 2 mona workers, as bench-jobs.
bench-flows: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_flows.py

# 10,000 calendar events on its own database: /cal week p99 and the .ics export of 1,000 events.
bench-calendar: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_calendar.py

# Re-pin after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/mona-lock-venv && $(PYTHON) -m venv /tmp/mona-lock-venv
	/tmp/mona-lock-venv/bin/python -m pip -q install -e '.[dev]'
	/tmp/mona-lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV)

# Extract every message (`_()` calls and command help) into core/locale/mona.pot and merge it into
# each language's .po, keeping translations; it lists what is left untranslated or fuzzy.
messages: $(VENV)/.installed
	$(BIN)/python scripts/extract_messages.py

# Regenerate what is written from the command declarations: the slash commands of
# slack-manifest.yml and the command table of README.md (a spec fails when either drifts).
docs: $(VENV)/.installed
	$(BIN)/python -m bot.slack_manifest
	$(BIN)/python scripts/readme_commands.py
