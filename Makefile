# course-nst: two commands for everyone.
#   make demo   set up .venv (first time only) and stylize a bundled photo, offline
#   make test   set up .venv and run the whole test suite, notebooks included
# Other targets: make lab, make notebooks, make bench, make clean.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.course-nst-installed
# The versions that produced the committed notebook outputs (see README).
CONSTRAINTS = requirements/constraints.txt
NBVAL = --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup demo test unit nbval lab notebooks bench clean

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
	COURSE_NST_REQUIRE_SANDBOX=1 $(PY) -m pytest tests notebooks $(NBVAL)

unit: $(STAMP)
	$(PY) -m pytest tests

nbval: $(STAMP)
	$(PY) -m pytest notebooks $(NBVAL)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

# Re-execute every notebook in place, top to bottom, and keep the outputs.
notebooks: $(STAMP)
	cd notebooks && for nb in [0-9]*.ipynb; do \
	  echo "executing $$nb"; \
	  ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=1200 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

bench: $(STAMP)
	$(PY) benchmarks/bench_transfer.py

clean:
	rm -rf $(VENV) out .pytest_cache
