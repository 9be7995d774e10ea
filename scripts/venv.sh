# shellcheck shell=bash
# Sourced by build.sh and runtest.sh: create .venv and install a requirements file when it changed.
# Everything it prints goes to stdout; callers that keep stdout clean redirect it.

ensure_venv() {
  # REQUIREMENTS names a set of pins (requirements-tools.txt, -local, -dev); what is installed is its lock
  # (requirements-tools.lock, …: every package, transitive ones included, with hashes; ./build.sh lock).
  local requirements="$1" lock stamp
  lock="${requirements%.txt}.lock"
  stamp=".venv/.installed-$(basename "$lock")"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "Python 3.11 or newer is needed (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11+" >&2
      exit 2
    fi
    echo "Creating .venv with $("$python" --version 2>&1)"
    "$python" -m venv .venv
  fi
  # Reinstall only when a lock changed since the last install (a smaller set's lock is a subset of -dev's).
  local digest
  digest=$(cat requirements*.lock | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "Installing $lock into .venv (the first time takes a minute or two)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
    compile_checkout
    echo "$digest" > "$stamp"
  fi
}

compile_checkout() {
  # As pip compiled what it installed, the checkout's own modules are compiled at install (to __pycache__/,
  # which git and the packaging leave out): where PYTHONDONTWRITEBYTECODE is set for every process, each start
  # would compile them again (0.2 s). The tools themselves honour that setting: a module edited later is
  # compiled in memory, as Python does.
  .venv/bin/python -m compileall -q saga sagatools functions >/dev/null || true
}
