#!/usr/bin/env bash
# Install Tether with its embedded local model and ask the retail support agent
# a real question, offline, with no API key (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[local]"

# One thread: measured faster than two on a shared 2-core machine
# (set TETHER_LOCAL_THREADS to change it).
export TETHER_LOCAL_THREADS=${TETHER_LOCAL_THREADS:-1}
QUESTION=${1:-"I'm Ava Moreno, zip 94107. What's the status of my order #W1024001?"}
exec .venv/bin/tether run examples/retail -m "$QUESTION"
