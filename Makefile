# The two commands:  make book  (execute every chapter, build _build/html)  and  make test.
# Both set up the environment first when it is missing or out of date.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.setup-stamp
# Without this, torch's OpenMP threads spin and a shared 2-core machine runs 2-10x slower.
export OMP_WAIT_POLICY := PASSIVE
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book run test test-a test-b test-unit test-notebooks test-smoke notebooks sync-check clean browser-check

setup: $(STAMP)
$(STAMP): pyproject.toml requirements-lock.txt vendor/package-lock.json scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

# Main job: every chapter through papermill (book profile) into _build/executed, then the HTML book.
# Two chapters at once, one thread each: every chapter in 4 min 08 s on 2 cores (2026-12-05). When this was
# chosen, the same chapters took 3 min 52 s this way against 10 min 24 s one at a time with two threads.
book: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m genlib.run --all --jobs 2 --out _build/executed
	$(PY) scripts/build_book.py --executed _build/executed

# One chapter or several, with a profile and overrides: make run ARGS="02 n_components=3"
run: $(STAMP)
	$(PY) -m genlib.run $(ARGS)

# All tests: genlib's unit tests, the book built and checked in headless Chromium (every page) and one
# chapter in JupyterLab, the smoke profile (every chapter the paper profile changes, and every
# train_family family, at cut sizes), then nbval on every committed chapter notebook, whose last cell
# moves every control of every live widget (genlib.widgets.check_live). Each chapter runs once in the
# book profile. Two single-threaded streams run at once (one per core: 2 single-threaded processes beat
# 1 two-threaded one); each prints its output when it ends. Screenshots land in _build/browser-check/,
# the widget redraw times are printed at the end.
# The split (rebalance here when a part grows): stream A = unit tests + nbval on NB_A, stream B = the
# smoke profile + nbval on the other chapters. From a fresh clone on a quiet machine (2026-12-05, main,
# `bash .ci/run` 11 min 50 s with setup): A 10 min 07 s, B 9 min 50 s, of which the smoke chapters 368 s
# (chapter 6 87 s, chapter 8 68 s). Keep the split while both stay near 10 min; move an nbval chapter
# across when one grows.
# A chapter added later lands in stream B (nbval) until it is listed here.
NB_A := $(wildcard book/00_*.ipynb book/04_*.ipynb book/05_*.ipynb book/07_*.ipynb book/08_*.ipynb book/09_*.ipynb)
NB_B := $(filter-out $(NB_A),$(sort $(wildcard book/[0-9][0-9]_*.ipynb)))
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg
export GENLIB_LIVE_TIMES := $(CURDIR)/_build/live-times

test: $(STAMP)
	@rm -rf _build/live-times
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-a test-b
	@$(PY) -m genlib.widgets report _build/live-times

test-a: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest tests --ignore=tests/test_smoke.py $(NBVAL) $(NB_A) -q

test-b: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/test_smoke.py $(NBVAL) $(NB_B) -q

# The quick loop while editing genlib: unit tests without the book, browser, JupyterLab or chapter runs.
test-unit: $(STAMP)
	$(PY) -m pytest tests -q -k "not book_build"

# nbval on every committed chapter notebook (and the live widget checks at their ends).
test-notebooks: $(STAMP)
	$(PY) -m pytest $(NBVAL) book -q
	@$(PY) -m genlib.widgets report _build/live-times

# The smoke profile alone: every chapter the paper profile changes, and every train_family family.
test-smoke: $(STAMP)
	$(PY) -m pytest tests/test_smoke.py -q

# Refresh the outputs of the committed notebooks from a book-profile run (for authors).
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m genlib.run --all --jobs 2 --out _build/executed
	$(PY) scripts/build_book.py --executed _build/executed --update-committed --no-html
	$(PY) scripts/appendices.py

# The browser check alone, on the book that `make book` built.
browser-check: $(STAMP)
	$(PY) scripts/browser_check.py _build/html --screenshots _build/browser-check

clean:
	rm -rf _build
