#!/usr/bin/env bash
# The whole test suite: lint, then every test (PostgreSQL tests run when TEST_POSTGRES_URL's server answers,
# and are skipped with the reason otherwise).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ruff check .
ruff format --check .
lint-imports --no-cache  # the layers contract in pyproject.toml: no upward imports
# A part of the suite (a folder such as tests/unit, a file, -k ...): no coverage gate, which is for the whole.
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *) exec python -m pytest "$@" ;;
  esac
done
# The whole suite, with branch coverage of the bot's packages; CI fails below 90%.
exec python -m pytest --cov=unogas_bot --cov=conversations --cov=storage --cov-branch \
  --cov-report=term-missing:skip-covered --cov-fail-under=90 "$@"
