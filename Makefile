# The two commands:  make book  (execute every chapter, build _build/html)  and  make test.
# Both set up the environment first when it is missing or out of date.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.setup-stamp
# Without this, torch's OpenMP threads spin and a shared 2-core machine runs 2-10x slower.
export OMP_WAIT_POLICY := PASSIVE
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book run test test-unit test-notebooks notebooks sync-check clean browser-check

setup: $(STAMP)
$(STAMP): pyproject.toml requirements-lock.txt vendor/package-lock.json scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

# Main job: every chapter through papermill (book profile) into _build/executed, then the HTML book.
book: $(STAMP)
	$(PY) -m genlib.run --all --out _build/executed
	$(PY) scripts/build_book.py --executed _build/executed

# One chapter or several, with a profile and overrides: make run ARGS="02 n_components=3"
run: $(STAMP)
	$(PY) -m genlib.run $(ARGS)

# All tests: genlib's unit tests, the book built and checked in headless Chromium (every page), the
# live widgets through a kernel and in JupyterLab, then nbval on every committed chapter notebook.
# Screenshots of each page land in _build/browser-check/.
test: $(STAMP)
	$(PY) -m pytest tests -q
	$(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg book -q

test-unit: $(STAMP)
	$(PY) -m pytest tests -q

# Refresh the outputs of the committed notebooks from a book-profile run (for authors).
notebooks: $(STAMP)
	$(PY) -m genlib.run --all --out _build/executed
	$(PY) scripts/build_book.py --executed _build/executed --update-committed --no-html
	$(PY) scripts/appendices.py

# The browser check alone, on the book that `make book` built.
browser-check: $(STAMP)
	$(PY) scripts/browser_check.py _build/html --screenshots _build/browser-check

clean:
	rm -rf _build
