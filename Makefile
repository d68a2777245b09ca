# Two entry points for a fresh machine with only Python >= 3.12: `make demo` and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= $(shell for p in python3.12 python3.13 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo app browser test lint bench notebooks clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: vbpsim needs Python >= 3.12 (none found on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the five-dimension scorecard of the payment schemes on the default scenario
	$(BIN)/vbpsim scorecard --scenario default --seeds 3 --workers 2

app: $(STAMP)  ## the interactive app on http://127.0.0.1:8765 (offline; --host/--port via `vbpsim app`)
	$(BIN)/vbpsim app

# The app's browser tests drive Debian's chromium: install it when missing and we can (root
# with apt-get); otherwise they are skipped with a note (under CI=true they fail instead).
browser:
	@if [ -n "$$VBPSIM_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the app's browser tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null \
			|| echo "could not install chromium: the browser tests will be skipped"; \
	else echo "no chromium (and no root apt-get to install it): the browser tests will be skipped"; fi

test: $(STAMP) browser  ## the whole test suite
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --nbmake tests notebooks

$(VENV)/.teach: $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,teach]"
	@touch $@

notebooks: $(VENV)/.teach  ## open the teaching notebooks in JupyterLab
	$(BIN)/jupyter lab notebooks

lint: $(STAMP)
	$(BIN)/ruff check vbpsim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
