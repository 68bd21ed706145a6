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
# Debian packages some tools and tests use, installed where this machine allows it (root with apt-get);
# elsewhere the command says how to get it, the test is skipped with the reason, and the rest works without:
# - Graphviz's `dot` draws `unogas-bot flows diagram --format svg|png`;
# - Chromium takes the screenshot of `flows preview`'s page in tests/flows/test_preview.py;
# - promtool (package prometheus) checks deploy/alerts.yml in tests/ops/test_alert_rules.py.
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # --no-install-recommends: the tools alone (no node exporter); Debian's policy-rc.d, where the machine
  # has one, keeps the prometheus package from starting a server.
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"; } >/dev/null 2>&1 \
    || echo "note: could not install ${missing[*]}; the commands and tests that need them say so" >&2
fi

