"""The Python the local cloud's handlers run on: the runtime serverless.yml names (python3.12) when this
machine has it, in a virtualenv holding requirements.txt (the stand-in for the Powertools layer and the
runtime's boto3)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from sagatools.project import PROJECT_ROOT


def runtime_python(runtime: str, err: TextIO) -> str:
    """The interpreter serverless.yml's runtime names (python3.12) if this machine has it, else this one."""
    version = runtime.removeprefix("python")
    candidates = [shutil.which(runtime)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{version}*/bin/{runtime}"), reverse=True)]
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except OSError:
            continue
        if found.returncode == 0 and found.stdout.strip() == str(tuple(int(p) for p in version.split("."))):
            return candidate
    print(
        f"local endpoint: {runtime} is not on this machine; the handlers run on Python "
        f"{sys.version_info.major}.{sys.version_info.minor} instead",
        file=err,
    )
    return sys.executable


def runtime_environment(python: str, err: TextIO) -> str:
    """A virtualenv of that Python holding requirements.lock (requirements.txt's pins, every dependency
    locked): the stand-in for the Powertools layer and the runtime's boto3. Made once, remade when the lock
    changes; returns its python."""
    requirements = PROJECT_ROOT / "requirements.lock"
    digest = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()
    # Beside the project's own environment: it outlives the endpoint, like .venv.
    home = PROJECT_ROOT / ".venv" / "lambda-runtimes" / Path(python).name
    stamp = home / ".installed"
    executable = home / "bin" / "python"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == digest and executable.exists():
        return str(executable)
    # Made by one start at a time, even across copies of the project that share .venv: a second waits,
    # then finds it made.
    home.parent.mkdir(parents=True, exist_ok=True)
    with (home.parent / f".{home.name}.lock").open("a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text(encoding="utf-8") == digest and executable.exists():
            return str(executable)
        return _make_runtime_environment(python, home, requirements, digest, err)


def _make_runtime_environment(python: str, home: Path, requirements: Path, digest: str, err: TextIO) -> str:
    stamp = home / ".installed"
    executable = home / "bin" / "python"
    print(f"local endpoint: preparing the handlers' runtime ({python}, requirements.lock)", file=err)
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(home)], check=True, capture_output=True)
    subprocess.run(
        [
            str(executable),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            str(requirements),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    stamp.write_text(digest, encoding="utf-8")
    return str(executable)
