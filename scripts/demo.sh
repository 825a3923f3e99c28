#!/usr/bin/env bash
# Install Tether with its embedded local model and ask the retail support agent
# a real question, offline, with no API key (the README's first command).
# `bash scripts/demo.sh serve` serves the same agent over HTTP instead
# (http://127.0.0.1:8000; the README shows the curl that talks to it).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[local]"

# Two threads: on an idle 2-core machine the answer below took ~10 s with two
# and ~17 s with one (the product's default, safer on a busy machine). Set
# TETHER_LOCAL_THREADS to change it.
export TETHER_LOCAL_THREADS=${TETHER_LOCAL_THREADS:-2}
if [ "${1:-}" = "serve" ]; then
  exec .venv/bin/tether serve examples/retail --port "${PORT:-8000}"
fi
QUESTION=${1:-"I'm Ava Moreno, zip 94107. What's the status of my order #W1024001?"}
exec .venv/bin/tether run examples/retail -m "$QUESTION"
