"""runtest.sh under any locale and any TZ: names its terminal cannot show are escaped, the files it
writes are UTF-8, and a zone the libraries refuse is shown as UTC; the results always arrive.

No ISO-8859-1 locale is installed on most machines: LC_ALL=C with UTF-8 mode off gives the interpreter
an ASCII locale (the handler log's default encoding), and PYTHONIOENCODING the terminal's encoding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saga.definition import SAGA
from tests.helpers import ROOT, book_step, saga_request

pytestmark = pytest.mark.slow

COMPANY = "Łódź 李 Hire"
ALTERNATIVE = "Zoom 李"
# A step whose provider may refuse and another take it (in forward recovery): its providers get the names.
WITH_ALTERNATIVES = next((step for step in SAGA.steps if step.alternatives_for), None)
needs_alternatives = pytest.mark.skipif(
    WITH_ALTERNATIVES is None, reason="no step of the app has alternative providers"
)


def run_runtest(tmp_path: Path, *args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """runtest as the scripts start it (sagatools/entry.py), its output read as its terminal would."""
    variables = {**os.environ, "RUNTEST_DIR": str(tmp_path / "out"), "NO_COLOR": "1", **environment}
    return subprocess.run(
        [sys.executable, "-m", "sagatools.runtest", *args, "--report", str(tmp_path / "pages")],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
        env=variables,
        encoding=environment.get("PYTHONIOENCODING", "utf-8"),
        errors="strict",  # whatever it wrote is text in that encoding
    )


@pytest.fixture
def foreign_names(tmp_path) -> str:
    """A saga whose step's providers have names ISO-8859-1 cannot write; the first provider refuses, so
    the alternative that books is named in the summary and in the handler log."""
    assert WITH_ALTERNATIVES is not None
    resource = WITH_ALTERNATIVES.resource
    request = saga_request("t-locale", recovery={"mode": "forward"}, simulate={book_step(resource): "fail:1"})
    request[resource].update({WITH_ALTERNATIVES.alternatives_for: COMPANY, "alternatives": [ALTERNATIVE]})
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
    return str(path)


ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


@needs_alternatives
def test_names_an_iso_8859_1_terminal_cannot_show_are_escaped_and_the_summary_delivered(tmp_path, foreign_names):
    # Given a locale whose files are ASCII and a terminal that writes ISO-8859-1
    # When a saga with a Polish and Chinese name runs
    done = run_runtest(tmp_path, foreign_names, **ASCII_LOCALE, PYTHONIOENCODING="latin-1")
    # Then it is delivered: exit 0, the summary with the name escaped where the terminal cannot show it
    assert done.returncode == 0, done.stderr
    assert "t-locale: COMMITTED" in done.stdout
    assert "Zoom \\u674e" in done.stdout  # the provider that booked
    assert "\\u0141ód\\u017a \\u674e Hire" in done.stdout  # the one that refused: ó is ISO-8859-1, written as it is
    assert "Traceback" not in done.stderr
    assert "Logging error" not in done.stderr
    # and the handler log holds the names as they are, in UTF-8
    log = (tmp_path / "out" / "handlers.log").read_bytes().decode("utf-8")
    assert ALTERNATIVE in log
    assert COMPANY in log


@needs_alternatives
def test_json_on_an_ascii_stdout_stays_valid_json_with_the_names_intact(tmp_path, foreign_names):
    # Given PYTHONIOENCODING=ascii
    done = run_runtest(tmp_path, foreign_names, "--json", **ASCII_LOCALE, PYTHONIOENCODING="ascii")
    # Then --json is delivered, valid, and says what happened, the company names included
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "COMMITTED"
    assert WITH_ALTERNATIVES is not None
    assert result["recovery"]["providers_refused"] == {WITH_ALTERNATIVES.resource: [COMPANY]}
    assert result["recovery"][f"{SAGA.verbs.requested}_with"] == {WITH_ALTERNATIVES.resource: ALTERNATIVE}
    assert "Traceback" not in done.stderr


def test_a_time_zone_the_libraries_refuse_is_shown_as_utc_without_a_traceback(tmp_path):
    # Given TZ=XYZ+24:30: legal POSIX, but 24.5 hours from UTC, past what a Python tzinfo may say
    request = tmp_path / "request.json"
    request.write_text(json.dumps(saga_request("t-zone")), encoding="utf-8")
    # When a saga runs
    done = run_runtest(tmp_path, str(request), TZ="XYZ+24:30")
    # Then it commits and is reported as usual, its page too
    assert done.returncode == 0, done.stderr
    assert "t-zone: COMMITTED" in done.stdout
    assert "Traceback" not in done.stderr
    assert (tmp_path / "pages" / "t-zone.html").exists()


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_json_of_any_text_stays_valid_json_on_a_stdout_that_cannot_write_it(encoding):
    # Given the tools' stdout (sagatools/entry.py) on a terminal that writes only ASCII or ISO-8859-1
    # When JSON that holds what it cannot write is printed as it is (pydantic's model_dump_json does so)
    value = {"name": f"{COMPANY} \U0001f697 \udcff"}  # past U+FFFF, and a byte of a file name that is not UTF-8
    program = (
        "import json; from sagatools.entry import usable_stdio; usable_stdio();"
        f" print(json.dumps(json.loads({json.dumps(value)!r}), ensure_ascii=False))"  # an ASCII command line
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
        env={**os.environ, **ASCII_LOCALE, "PYTHONIOENCODING": encoding},
        encoding=encoding,
    )
    # Then it is written, and read back as the same JSON
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == value


def test_the_generated_files_are_read_and_checked_as_utf_8_under_an_ascii_locale():
    # Given an ASCII locale, and a README (where the diagrams are generated) that is UTF-8 with arrows in it
    assert not (ROOT / "README.md").read_text(encoding="utf-8").isascii()
    # When ./build.sh checks the generated files
    done = subprocess.run(
        [sys.executable, "-m", "sagatools.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **ASCII_LOCALE},
    )
    # Then it reads them as UTF-8 and finds them as they should be
    assert done.returncode == 0, done.stderr
    assert "agree with" in done.stdout
