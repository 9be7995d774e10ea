# shellcheck shell=bash
# Sourced by build.sh and runtest.sh: create .venv and install a requirements file when it changed.
# Everything it prints goes to stdout; callers that keep stdout clean redirect it.

ensure_venv() {
  local requirements="$1" stamp
  stamp=".venv/.installed-$(basename "$1")"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "Python 3.11 or newer is needed (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11+" >&2
      exit 2
    fi
    echo "Creating .venv with $("$python" --version 2>&1)"
    "$python" -m venv .venv
  fi
  # Reinstall only when the requirements (or what they include) changed since the last install.
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "Installing $requirements into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}
