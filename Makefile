# course-nst: two commands for everyone.
#   make demo   set up .venv (first time only) and stylize a bundled photo, offline
#   make test   set up .venv and run the whole test suite, notebooks included
# Other targets: make lab [PORT=8889], make notebooks, make bench, make clean.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.course-nst-installed
# The versions that produced the committed notebook outputs (see README).
CONSTRAINTS = requirements/constraints.txt
NBVAL = --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# The number of CPU threads that produced the committed notebook outputs. The pictures do not
# depend on it, but the order of float32 sums does: another thread count gives other last digits,
# which grow over a few hundred L-BFGS steps and would fail nbval. So `make notebooks` and every
# target that runs nbval use this many threads, whatever the machine has.
NB_THREADS ?= 2
PIN_THREADS = OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS)
# Which notebooks `make notebooks` re-executes (e.g. make notebooks NOTEBOOKS=03_style_cost.ipynb).
NOTEBOOKS ?= [0-9]*.ipynb

.PHONY: setup demo test unit nbval lint lab notebooks bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/course-nst demo -o out

test: $(STAMP)
	.ci/system-deps
	COURSE_NST_REQUIRE_SANDBOX=1 $(PIN_THREADS) $(PY) -m pytest tests course_nst notebooks $(NBVAL)

unit: $(STAMP)
	$(PY) -m pytest tests course_nst

nbval: $(STAMP)
	$(PIN_THREADS) $(PY) -m pytest notebooks $(NBVAL)

# Lint (ruff: pyflakes, pycodestyle, isort, bugbear, pyupgrade, simplify), formatting, types (mypy).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check course_nst tests benchmarks
	$(PY) -m mypy

# make lab PORT=8889 for another port; --allow-root because many containers run as root.
PORT ?= 8888
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

# Re-execute every notebook in place, top to bottom, and keep the outputs.
notebooks: $(STAMP)
	cd notebooks && for nb in $(NOTEBOOKS); do \
	  echo "executing $$nb"; \
	  $(PIN_THREADS) ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=1200 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

bench: $(STAMP)
	$(PY) benchmarks/bench_transfer.py

clean:
	rm -rf $(VENV) out .pytest_cache
