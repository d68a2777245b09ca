# Two entry points for a fresh machine with only Python >= 3.12: `make demo` and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= $(shell for p in python3.12 python3.13 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: vbpsim needs Python >= 3.12 (none found on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## compare the base payment schemes on the default scenario
	$(BIN)/vbpsim compare --scenario default --seeds 2

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --nbmake tests notebooks

lint: $(STAMP)
	$(BIN)/ruff check vbpsim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
