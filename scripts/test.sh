#!/usr/bin/env bash
# Install everything and run the whole test suite (the README's test command;
# CI runs exactly this). Needs python3 >= 3.11; installs PostgreSQL and Redis
# from Debian's packages if they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,local]"

bash scripts/ensure-services.sh
export TETHER_TEST_POSTGRES_URL=${TETHER_TEST_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}
export TETHER_REQUIRE_SERVICES=1

echo "== ruff"; .venv/bin/ruff check src tests examples bench docs
echo "== ruff format"; .venv/bin/ruff format --check src tests examples bench docs
echo "== mypy"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== pytest"; .venv/bin/python -m pytest "$@"
