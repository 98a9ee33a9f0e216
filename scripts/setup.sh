#!/usr/bin/env bash
# Set up both runtimes (idempotent; seconds when nothing changed):
#   .venv       Python 3.11: gateway, action server, tests        requirements/app.in  + app.lock.txt
#   .venv-rasa  Python 3.10: Rasa 3.6.21 + NLU serving runtime    requirements/rasa.in + rasa.lock.txt
# plus the Debian Chromium the browser tests drive, and a .env with generated secrets.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p var/logs
SETUP_LOG="var/logs/setup.log"

die() { echo "setup: error: $*" >&2; exit 1; }

# Print the path of a Python interpreter of version $1 (e.g. 3.10): PATH first, then pyenv.
find_python() {
  local want="$1" candidate
  local candidates=("python$want")
  local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  if command -v pyenv >/dev/null 2>&1; then pyenv_root="$(pyenv root)"; fi
  for dir in "$pyenv_root"/versions/"$want".*/bin; do
    [ -x "$dir/python$want" ] && candidates+=("$dir/python$want")
  done
  [ "$want" = "3.11" ] && candidates+=("python3")
  for candidate in "${candidates[@]}"; do
    # pyenv shims exist for versions that are not selected; running them proves they work.
    if "$candidate" -c "import sys; sys.exit(0 if sys.version_info[:2] == tuple(map(int, '$want'.split('.'))) else 1)" >/dev/null 2>&1; then
      command -v "$candidate" || echo "$candidate"
      return 0
    fi
  done
  return 1
}

# ensure_venv DIR PYTHON_VERSION IN_FILE LOCK_FILE
ensure_venv() {
  local dir="$1" version="$2" infile="$3" lock="$4" python stamp want
  python="$(find_python "$version")" || die "Python $version not found (looked on PATH and in pyenv's versions folder). Install it, e.g. 'pyenv install $version'."
  want="$(cat "$infile" "$lock" | sha256sum | cut -d' ' -f1) $("$python" -VV | tr -d '\n')"
  stamp="$dir/.switchboard-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  local started=$SECONDS
  echo "setup: installing $dir ($("$python" -V), $infile; a few minutes the first time; log $SETUP_LOG)"
  {
    echo "===== $(date -u '+%F %T') $dir"
    [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade "pip==24.2"
    "$dir/bin/python" -m pip install -q -r "$infile" -c "$lock"
  } >>"$SETUP_LOG" 2>&1 || { tail -n 30 "$SETUP_LOG" >&2; die "installing $dir failed (full output in $SETUP_LOG)"; }
  echo "setup: $dir ready in $((SECONDS - started)) s"
  echo "$want" > "$stamp"
}

ensure_venv .venv 3.11 requirements/app.in requirements/app.lock.txt
ensure_venv .venv-rasa 3.10 requirements/rasa.in requirements/rasa.lock.txt

# Debian packages only the tests use (make test sets SWITCHBOARD_TEST_TOOLS=1; make run needs none):
# Chromium for the browser tests (Playwright cannot download its own here) and docker-compose to
# validate docker-compose.yml (no Docker engine is needed for that).
missing=()
why=()
if [ "${SWITCHBOARD_TEST_TOOLS:-0}" = "1" ]; then
  if [ "${SWITCHBOARD_SKIP_BROWSER:-0}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium); why+=("chromium for the browser tests")
  fi
  if ! command -v docker-compose >/dev/null 2>&1; then
    missing+=(docker-compose); why+=("docker-compose to check docker-compose.yml")
  fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    reasons="$(printf '%s; ' "${why[@]}")"
    echo "setup: installing Debian packages the tests need: ${reasons%; }"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >>"$SETUP_LOG" 2>&1 \
      || { tail -n 30 "$SETUP_LOG" >&2; die "apt-get install ${missing[*]} failed (full output in $SETUP_LOG)"; }
  else
    die "missing Debian packages: ${missing[*]} (install them with apt-get as root)"
  fi
fi

.venv/bin/python scripts/ensure_env.py
