#!/usr/bin/env bash
# The whole test suite: lint, then every test (PostgreSQL tests run when TEST_POSTGRES_URL's server answers,
# and are skipped with the reason otherwise).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ruff check .
ruff format --check .
exec python -m pytest "$@"
