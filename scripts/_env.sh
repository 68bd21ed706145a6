# Sourced by run.sh and test.sh: make sure .venv exists and holds the pinned dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install (UNOGAS_VENV_READY=1: a .venv shared
# with another checkout, as a test does, is used as it is: installing would point it at this checkout).
stamp=".venv/.installed-$(.venv/bin/python -c 'import hashlib,sys;print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest()[:16])')"
if [ ! -f "$stamp" ] && [ -z "${UNOGAS_VENV_READY:-}" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# Graphviz's `dot` draws `unogas-bot flows diagram --format svg|png`: installed where this machine allows
# it (root with apt-get); elsewhere that command says how to get it, and everything else works without.
if ! command -v dot >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && apt-get install -y -qq graphviz; } >/dev/null 2>&1 \
    || echo "note: Graphviz could not be installed; flows diagram --format svg|png will say so" >&2
fi

