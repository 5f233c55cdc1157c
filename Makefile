# The two set-up commands of the README:
#   make demo   -- create the venv, install, fetch data and models, run the end-to-end demo
#   make test   -- the same set-up, then lint, format check and the test suite with doctests (what .ci/run calls)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OPTICAL := $(VENV)/bin/optical
# The local mirror of the data (read-only); `optical data fetch` copies it into the cache.
MIRROR ?= ../shared/data

.PHONY: setup demo lint browser test bench bench-pylate clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel; the package itself only asks for torch>=2.3 so GPU users keep their build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
	$(OPTICAL) data fetch $(if $(wildcard $(MIRROR)),--mirror $(MIRROR))
	$(OPTICAL) model prepare

demo: setup
	$(OPTICAL) demo

# Lint and format check first (fast), then the tests and the docstring examples of src/optical
# (pyproject's pytest options: testpaths src/optical and tests, --doctest-modules).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# The browser test of `optical serve` drives Debian's chromium through chromedriver: installed here when absent
# (tests/serve/conftest.py does the same when pytest runs alone).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && \
		 $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver)

test: setup lint browser
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/run_all.py

# PyLate's colbert_scores against our MaxSim (maxsim_over_pylate). PyLate pins torch 2.11 and this project runs 2.13,
# so it goes beside the venv without its dependencies (its scoring module is pure torch; these are what it imports).
PYLATE_DIR := .bench-pylate
bench-pylate: setup
	$(PY) -m pip install -q --no-deps --target $(PYLATE_DIR) pylate==1.6.0 datasets==5.2.0 dill==0.4.1 \
		multiprocess==0.70.19 pandas==3.1.1 pyarrow==26.0.1 ujson==6.1.0 xxhash==4.1.0
	PYTHONPATH=$(PYLATE_DIR) $(PY) benchmarks/bench_maxsim.py --only pylate

clean:
	rm -rf $(VENV) .pytest_cache $(PYLATE_DIR)
