# Neural-network assignment kit. `make help` lists the targets.
#
# Every target that runs Python first makes sure .venv exists and holds what
# requirements.txt and pyproject.toml ask for. A stamp named after the hash of
# those two files records a finished install, so a second run skips it and an
# edit to either file triggers a reinstall. setup_venv.sh does the work: it takes
# a lock (two first-time setups take turns) and repairs a half-made venv (no pip)
# or names the one command that fixes it.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
HASH   := $(shell $(PYTHON) -c 'import hashlib; print(hashlib.sha256(open("requirements.txt","rb").read() + open("pyproject.toml","rb").read()).hexdigest()[:16])' 2>/dev/null)
STAMP  := $(VENV)/.installed-$(HASH)

# The tests, and the reference outputs stored in the notebooks, use the embedded
# digits dataset whatever is in datasets/.
TEST_ENV := COURSE_DATASET=digits PYTHONHASHSEED=0
NBVAL    := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# make test runs on two processes, a test file to each in turn (a module's fixtures are
# built once, and nbval keeps a notebook's cells in order). In the solution tree the
# grading batches (marked alone) already grade two submissions at once, so they run after
# it, on one process: four kernels on two cores would crowd their cell timeouts.
PARALLEL := -n 2 --dist loadfile

# OpenBLAS's idle threads sleep after 2**16 cycles instead of spinning for about 0.1 s
# beside the layers' own threads: a training step takes about half the time (measured in
# course/runtime.py, which sets the same value when `import course` comes before numpy;
# a test keeps the two equal). Exported to everything make runs, Jupyter kernels included.
# COURSE_TUNING=0 (or off, no, false) turns it off, here and in course/runtime.py.
ifeq ($(filter 0 off no false OFF NO FALSE Off No False,$(strip $(COURSE_TUNING))),)
export OPENBLAS_THREAD_TIMEOUT ?= 16
endif

.DEFAULT_GOAL := help
.PHONY: help setup test quick lint unit nbval check grade run lab data handin student notebooks bench clean

# Two slips worth a clear stop before any work: `make check 1.3` (the ID as a target) and
# `make check task=1.3` (a variable make does not read).
ifneq ($(filter check,$(MAKECMDGOALS)),)
UNKNOWN_GOALS := $(filter-out $(shell sed -n 's/^\.PHONY: //p' $(firstword $(MAKEFILE_LIST))),$(MAKECMDGOALS))
ifneq ($(UNKNOWN_GOALS),)
$(error make check takes task IDs as TASK: make check TASK="$(UNKNOWN_GOALS)")
endif
endif
ifeq ($(origin task),command line)
$(error TASK in capitals: make check TASK="$(task)")
endif

# make run STUDENT=1 (or yes, true, on, in any case) builds the student site; 0, no, false,
# off or nothing the solution site. Any other value stops before any work: read as "no" it
# would write the solution site where the student one was asked for.
STUDENT_YES := 1 yes true on YES TRUE ON Yes True On
STUDENT_NO  := 0 no false off NO FALSE OFF No False Off
ifneq ($(filter run,$(MAKECMDGOALS)),)
ifneq ($(filter-out $(STUDENT_YES) $(STUDENT_NO),$(STUDENT)),)
$(error make run takes STUDENT=1 (the student release) or STUDENT=0 (the solution site), not STUDENT=$(STUDENT))
endif
ifeq ($(origin student),command line)
$(error STUDENT in capitals: make run STUDENT=$(student))
endif
endif

# Targets that need the solution tree (kit/, reference outputs): `make help` lists them
# only there, and in the student tree they say so and stop.
SOLUTION_ONLY := nbval grade run student bench notebooks
# Not offered to students either (it works there, but test and quick cover it); every
# target the student help lists has a `python -m course` twin of the same name.
STUDENT_HIDDEN := unit

help: ## list the targets
	@echo "Neural-network assignment kit. Set-up is automatic: the first target that"
	@echo "needs Python creates .venv and installs requirements.txt."
	@echo
	@awk -v hide="$(if $(wildcard kit),,$(SOLUTION_ONLY) $(STUDENT_HIDDEN))" \
	  -v student="$(if $(wildcard kit),,1)" \
	  'BEGIN {FS = ":.*## "; n = split(hide, h, " "); for (i = 1; i <= n; i++) skip[h[i]] = 1} \
	   /^[a-z][a-z-]*:.*## / && !($$1 in skip) {d = $$2; if (student) sub(/^students: /, "", d); \
	   printf "  make %-10s %s\n", $$1, d}' $(MAKEFILE_LIST)
	@[ -d kit ] || { echo; echo "Without make: python -m course COMMAND, COMMAND one of the names above"; \
	  echo "(e.g. python -m course check 1.3). Use the venv's Python: .venv/bin/python, or"; \
	  echo ".venv\\Scripts\\python on Windows (python -m course setup: any Python 3.10+, in this folder)."; }

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
	  { echo "error: the kit needs Python 3.10 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.12 ..."; exit 1; }
	@bash ./setup_venv.sh "$(PYTHON)" "$(VENV)" "$@"

setup: $(STAMP) ## create .venv and install the requirements (other targets do this for you)

# Lint and tests both run, and either failing fails the target. In the solution tree
# (it has kit/) nbval compares the notebooks with their stored reference outputs. In the
# student tree the notebooks are run top to bottom without comparing outputs (a student's
# saved outputs may come from CIFAR-10), and a failure names the cell as Jupyter numbers
# it (tests/test_notebooks_run.py).
test: $(STAMP) ## lint, all tests, and every notebook run (digits pinned)
	@status=0; \
	echo "== ruff"; $(VENV)/bin/ruff check . || status=1; \
	if [ -d kit ]; then \
	  echo "== pytest -n 2 (unit, property, release, nbval; not the tests marked alone)"; \
	  $(TEST_ENV) $(VPY) -m pytest tests notebooks $(NBVAL) -m "not alone" $(PARALLEL) || status=1; \
	  echo "== pytest -m alone (grading batches: each runs kit grade --jobs 2 itself)"; \
	  $(TEST_ENV) $(VPY) -m pytest tests -m alone -p no:nbval || status=1; \
	else \
	  echo "== pytest -n 2 (task tests, other tests, and every notebook run top to bottom)"; \
	  COURSE_RUN_NOTEBOOKS=1 $(TEST_ENV) $(VPY) -m pytest tests $(PARALLEL) || status=1; \
	fi; \
	exit $$status

# The loop while changing code: lint, then every test not marked slow (no notebook runs,
# no nbval, no release of the whole tree, no grading zoo); run make test before committing.
quick: $(STAMP) ## lint and the fast tests (no slow ones, no notebooks) on two processes
	@status=0; \
	echo "== ruff"; $(VENV)/bin/ruff check . || status=1; \
	echo "== pytest -m 'not slow' -n 2 (make test runs everything)"; \
	$(TEST_ENV) $(VPY) -m pytest tests -m "not slow" -n 2 -q -p no:cacheprovider || status=1; \
	exit $$status

lint: $(STAMP) ## ruff over the code, the tests and the notebooks
	$(VENV)/bin/ruff check .

unit: $(STAMP) ## unit, property and release tests only
	$(TEST_ENV) $(VPY) -m pytest tests

# In the student tree the notebooks carry no reference outputs to compare (a student's may
# come from CIFAR-10): `make test` runs them top to bottom instead.
nbval: $(STAMP) ## check the notebooks' stored outputs with nbval
	@[ -d kit ] || { echo "make nbval compares the solution tree's reference outputs; here 'make test' runs every notebook top to bottom."; exit 1; }
	$(TEST_ENV) $(VPY) -m pytest notebooks $(NBVAL)

# The scoreboard is the result, so a failing task is a row of the table, not a make error:
# pytest's status 1 (some task fails) is not passed on; usage errors (2 and up) are.
check: $(STAMP) ## students: per-task scoreboard with points (one task: make check TASK=1.3, several: TASK="1.3 1.4")
	@status=0; $(TEST_ENV) $(VPY) -m pytest tests -q -m task --scoreboard -p no:cacheprovider \
	  -p no:nbval -W ignore $(if $(TASK),--task "$(TASK)" --tb=short,--tb=no) || status=$$?; \
	[ $$status -le 1 ] || exit $$status

grade: $(STAMP) ## instructors: regrade submissions: make grade SUBS="subs/*.zip" [JOBS=1] [OUT=build/grades]
	@[ -d kit ] || { echo "make grade runs in the solution tree (it needs kit/)."; exit 1; }
	@[ -n "$(SUBS)" ] || { echo 'usage: make grade SUBS="submissions/*.zip" [JOBS=1] [OUT=build/grades] (more options: python -m kit grade --help)'; exit 2; }
	$(VPY) -m kit grade $(SUBS) --jobs $(or $(JOBS),1) --out $(or $(OUT),build/grades)

# STUDENT=1 builds the site from the student release (stubs in place) instead.
run: $(STAMP) ## execute every notebook; the site goes to build/site/ (STUDENT=1: student release)
	@[ -d kit ] || { echo "make run needs the instructor tools (kit/); in the student release use 'make lab'."; exit 1; }
	@$(VPY) -m kit site --out build/site $(if $(filter $(STUDENT_YES),$(STUDENT)),--student)

# Root in a container: JupyterLab refuses root unless told, so it is opt-in:
#   make lab LAB_ARGS=--allow-root   (add --ip=0.0.0.0 --no-browser to reach it from the host)
lab: $(STAMP) ## open JupyterLab on notebooks/ (extra options: LAB_ARGS=..., e.g. --allow-root)
	@if [ "$$(id -u)" = 0 ] && ! echo " $(LAB_ARGS) " | grep -q -- ' --allow-root '; then \
	  echo "make lab: you are root, and JupyterLab refuses to run as root unless asked."; \
	  echo "  In a container, run: make lab LAB_ARGS=--allow-root"; exit 1; fi
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks

data: ## download CIFAR-10 into datasets/ (about 170 MB; checked with MD5)
	./get_datasets.sh

# The zip holds what the grader reads: course/ and the notebooks with their outputs.
handin: $(STAMP) ## zip course/ and the notebooks (with outputs) to hand in (OUT=file.zip; default handin.zip)
	@$(VPY) -m course handin $(if $(OUT),--out "$(OUT)")

student: $(STAMP) ## instructors: build the student release in build/student and on branch 'student'
	@[ -d kit ] || { echo "make student runs in the solution tree (it needs kit/)."; exit 1; }
	$(VPY) -m kit release --out build/student --branch student

# PyTorch is optional and never a requirement: `.venv/bin/pip install torch==2.13.0` adds its
# columns. Benchmark with the OpenBLAS overrides unset: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE make bench
# Options of `python -m kit bench` go through BENCH_ARGS, e.g. make bench BENCH_ARGS="--runs 3".
bench: $(STAMP) ## instructors: time the conv/pool layers and the ThreeLayerConvNet step, against PyTorch if installed (options: BENCH_ARGS=..., e.g. "--runs 3")
	@[ -d kit ] || { echo "make bench runs in the solution tree (it needs kit/)."; exit 1; }
	$(VPY) -m kit bench $(BENCH_ARGS)

notebooks: $(STAMP) ## instructors: re-execute the notebooks in place to refresh reference outputs
	@[ -d kit ] || { echo "make notebooks runs in the solution tree (it needs kit/)."; exit 1; }
	$(TEST_ENV) $(VPY) -m kit site --in-place

clean: ## remove build output and caches (keeps .venv and datasets)
	rm -rf build .pytest_cache .hypothesis .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
