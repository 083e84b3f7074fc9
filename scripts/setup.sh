#!/usr/bin/env bash
# Create (or bring up to date) the environment the book and its tests need:
#   .venv/     Python virtual environment: torch==2.13.0 (CPU wheel) first, then genlib with the
#              pinned rest (pyproject.toml + requirements-lock.txt)
#   _vendor/   local MathJax, require.js and Jupyter widget manager for the offline HTML book (npm)
#   chromium   Debian's headless browser for the browser checks of `make test` (apt, only when missing)
# Safe to run again; `make` runs it whenever those files change.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first, alone: any other torch requirement would pull gigabytes of CUDA packages.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "setup: installing torch==2.13.0"
  "${PIP[@]}" torch==2.13.0
fi
echo "setup: installing genlib and its pinned dependencies"
"${PIP[@]}" -c requirements-lock.txt -e ".[book,test]"
.venv/bin/python -m pip check

if ! command -v npm >/dev/null; then
  echo "setup: npm is needed for the offline book assets (apt-get install npm)" >&2
  exit 1
fi
echo "setup: installing offline book assets (MathJax, require.js, widget manager)"
(cd vendor && npm ci --no-audit --no-fund --loglevel=error)
rm -rf _vendor.tmp && mkdir -p _vendor.tmp
cp -r vendor/node_modules/mathjax/es5 _vendor.tmp/mathjax
cp vendor/node_modules/requirejs/require.js _vendor.tmp/require.js
cp vendor/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js _vendor.tmp/embed-amd.js
rm -rf _vendor && mv _vendor.tmp _vendor

# The browser checks (tests/test_browser.py, tests/test_jupyterlab.py) drive Debian's Chromium over
# the DevTools protocol; no browser is downloaded by a Python package.
if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium (apt) for the browser checks"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is needed for the browser checks of make test (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
echo "setup: done"
