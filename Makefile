# dialjam — `make run` runs the installation, `make test` checks all of it.
# Both set everything up on a fresh Debian machine (apt packages when run as root).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# Debian packages the tests need (installed by .ci/apt-deps when missing and root).
APT_TEST_PACKAGES = util-linux procps jackd2 fluidsynth timgm6mb-soundfont xvfb xdotool imagemagick zbar-tools chromium sip-tester multimon-ng sox espeak-ng openssl kamailio baresip-core redis-server
# …and what `make test-under-load` adds: a load that keeps every core busy.
APT_LOAD_PACKAGES = stress-ng
LOAD_CPUS ?= $(shell nproc)
RUN_ARGS ?=
REHEARSE_ARGS ?= --callers 20 --rate 2 --duration 30
# The music before the groove bed and the roles: bench/musicality.py measures beside it.
MUSIC_BEFORE ?= e485f6e

.PHONY: run test test-under-load lint typecheck pytest bench rehearse apt-deps venv clean

run: venv
	$(PY) -m billboard $(RUN_ARGS)

test: venv apt-deps lint typecheck pytest

# No test may fail by chance: the whole of `make test` while stress-ng keeps every core
# busy (LOAD_CPUS workers, one a core), as on a CI machine that other work shares. The
# load stops with the tests (at the latest after four hours), and the tests' status is
# the target's.
test-under-load: venv
	@bash .ci/apt-deps $(APT_LOAD_PACKAGES)
	@command -v stress-ng >/dev/null || { echo "test-under-load needs stress-ng: apt-get install stress-ng"; exit 1; }
	@stress-ng --cpu $(LOAD_CPUS) --timeout 4h --quiet & load=$$!; \
	  trap 'kill $$load 2>/dev/null; wait $$load 2>/dev/null' EXIT INT TERM; \
	  echo "stress-ng keeps $(LOAD_CPUS) cores busy (pid $$load)"; \
	  $(MAKE) --no-print-directory test

# A rehearsal crowd against the running relay (python -m relay.rehearsal --help), e.g.
# make rehearse REHEARSE_ARGS="--config venue.toml --via twilio --callers 100"
rehearse: venv
	$(PY) -m relay.rehearsal $(REHEARSE_ARGS)

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "cannot create $(VENV): install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

apt-deps:
	@bash .ci/apt-deps $(APT_TEST_PACKAGES)

lint: venv
	$(VENV)/bin/ruff check relay billboard tests bench sounds
	$(VENV)/bin/ruff format --check relay billboard tests bench sounds

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Every benchmark saves its figures in bench/results/ (with the machine and its load);
# bench/report.py then rewrites the README's figures from them. The soak runs five
# minutes here; the full soak is 30 (python bench/soak.py).
RESULTS = bench/results
bench: venv
	$(PY) bench/relay_load.py --json $(RESULTS)/relay_load.json $(BENCH_ARGS)
	$(PY) bench/relay_memory.py --json $(RESULTS)/relay_memory.json
	$(PY) bench/relay_memory.py --history-bytes 1099511627776 \
	  --history-total-bytes 1099511627776 --json $(RESULTS)/relay_memory-unbounded.json
	$(PY) bench/engine_speed.py --json $(RESULTS)/engine_speed.json
	$(PY) bench/frame_time.py --xvfb --json $(RESULTS)/frame_time.json
	$(PY) bench/grid_timing.py --json $(RESULTS)/grid_timing.json
	$(PY) bench/dtmf_speed.py --json $(RESULTS)/dtmf_speed.json
	$(PY) bench/phone_mix.py --json $(RESULTS)/phone_mix.json
	$(PY) bench/phone_out.py --json $(RESULTS)/phone_out.json
	$(PY) bench/backplane_cost.py --json $(RESULTS)/backplane_cost.json
	$(PY) bench/soak.py --duration 300 --json $(RESULTS)/soak.json
	$(PY) bench/musicality.py --compare-rev $(MUSIC_BEFORE) --json $(RESULTS)/musicality.json
	$(PY) bench/report.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
