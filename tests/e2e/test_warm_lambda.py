"""The local endpoint's Lambda: warm environments running a function's zip, as Lambda runs them."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import zipfile

import pytest

from sagatools.emulation import execution_environment
from sagatools.emulation.execution_environment import FunctionVersion
from sagatools.emulation.warm_lambda import WarmLambda

HANDLERS = """
import os, sys, time

time.sleep(float(os.environ.get("IMPORT_SECONDS", "0")))  # a slow cold start
started = time.time()
preloaded = "boto3" in sys.modules  # imported by the fork server, before this module

def echo(event, context):
    return {"pid": os.getpid(), "event": event, "function": context.function_name,
            "remaining_ms": context.get_remaining_time_in_millis(), "memory": context.memory_limit_in_mb,
            "variable": os.environ.get("GREETING"), "started": started, "preloaded": preloaded,
            "home": os.environ.get("HOME"), "cwd": os.getcwd(), "ppid": os.getppid()}

def slow(event, context):
    time.sleep(event["seconds"])
    return {"pid": os.getpid()}

def fails(event, context):
    raise ValueError("no such thing")

def dies(event, context):
    os._exit(3)

def exits(event, context):
    sys.exit(4)

def chatty(event, context):
    for n in range(2000):
        print("a log line that the disk will not take", n)
    sys.stderr.write("and one on stderr\\n")
    return {"pid": os.getpid()}
"""


def code(text: str = HANDLERS) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers/app.py", text)
    return buffer.getvalue()


def function(handler: str, timeout: int = 5, sha: str = "v1", **environment: str) -> FunctionVersion:
    return FunctionVersion(
        name=f"fn-{handler}",
        arn=f"arn:aws:lambda:eu-west-1:123456789012:function:fn-{handler}",
        handler=f"handlers/app.{handler}",
        environment=environment,
        timeout_seconds=timeout,
        memory_mb=256,
        code_sha=sha,
    )


@pytest.fixture(params=["forked", "fresh"])
def pool(request, tmp_path):
    # Every behaviour holds for an environment forked from the fork server and for one started fresh.
    lambdas = WarmLambda(
        sys.executable, tmp_path, {"PATH": "/usr/bin:/bin"}, per_function=2, fork=request.param == "forked"
    )
    yield lambdas
    lambdas.close()


def test_environments_are_forked_from_the_server_with_the_libraries_imported_and_their_own_variables(tmp_path):
    lambdas = WarmLambda(sys.executable, tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        answer, failed = invoke(lambdas, function("echo", GREETING="hello"), {"n": 1})
        assert not failed, answer
        assert answer["preloaded"] is True
        assert answer["ppid"] != os.getpid()  # the server's child
        assert (answer["variable"], answer["home"]) == ("hello", None)
        assert answer["cwd"].startswith(str(tmp_path / "code"))
        other, _ = invoke(lambdas, function("echo", GREETING="bye"), {"n": 2})
        assert other["variable"] == "bye"
        assert other["pid"] != answer["pid"]
    finally:
        lambdas.close()


def test_when_the_fork_server_is_gone_environments_are_started_fresh(tmp_path):
    import signal

    lambdas = WarmLambda(sys.executable, tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        forked, _ = invoke(lambdas, function("echo"), {})
        assert forked["preloaded"] is True
        assert lambdas.forks is not None
        assert lambdas.forks._process is not None
        os.kill(lambdas.forks._process.pid, signal.SIGKILL)
        lambdas.forks._process.wait(timeout=5)
        fresh, failed = invoke(lambdas, function("echo", sha="v2"), {}, zipped=code(HANDLERS + "\n# v2\n"))
        assert not failed, fresh
        assert (fresh["preloaded"], fresh["ppid"]) == (False, os.getpid())
    finally:
        lambdas.close()


def test_an_environment_is_started_fresh_where_a_fork_would_import_otherwise(tmp_path):
    lambdas = WarmLambda(sys.executable, tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        # a variable the server's imports read (botocore reads HOME) has another value for this function
        answer, failed = invoke(lambdas, function("echo", HOME=str(tmp_path)), {})
        assert not failed, answer
        assert (answer["preloaded"], answer["home"], answer["ppid"]) == (False, str(tmp_path), os.getpid())
        # the function's code holds a module the server imported: the function's own must be the one imported
        shadowing = io.BytesIO()
        with zipfile.ZipFile(shadowing, "w") as archive:
            archive.writestr(
                "handlers/app.py", "import jmespath\n\ndef which(event, context):\n    return jmespath.OURS\n"
            )
            archive.writestr("jmespath.py", "OURS = 'the zip'\n")
        answer, failed = invoke(lambdas, function("which", sha="shadow"), {}, zipped=shadowing.getvalue())
        assert (answer, failed) == ("the zip", False)
    finally:
        lambdas.close()


def invoke(pool, version, event, zipped=None):
    payload, failed = pool.invoke(version, zipped or code(), json.dumps(event))
    return json.loads(payload), failed


def test_an_environment_is_started_once_and_reused_with_the_functions_configuration(pool):
    version = function("echo", GREETING="hello")
    first, failed = invoke(pool, version, {"n": 1})
    second, _ = invoke(pool, version, {"n": 2})
    assert not failed
    assert first["pid"] == second["pid"]
    assert first["started"] == second["started"]  # the module was imported once: a warm start
    assert (first["function"], first["memory"], first["variable"]) == ("fn-echo", 256, "hello")
    assert 0 < first["remaining_ms"] <= 5000
    assert second["event"] == {"n": 2}
    assert (pool.statistics.cold_starts, pool.statistics.invocations) == (1, 2)


def test_overlapping_invocations_get_environments_of_their_own_up_to_the_bound(pool):
    version = function("slow")
    answers = []

    def call():
        answers.append(invoke(pool, version, {"seconds": 0.5})[0]["pid"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 3
    assert len(set(answers)) == 2  # the bound is 2: the third waited for a warm one
    assert pool.statistics.cold_starts == 2


def test_a_handler_past_its_timeout_is_killed_and_reported_as_lambda_does(pool):
    version = function("slow", timeout=1)
    error, failed = invoke(pool, version, {"seconds": 5})
    assert failed
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    _, failed = invoke(pool, version, {"seconds": 0})
    assert not failed  # a new environment answered
    assert pool.statistics.timeouts == 1


def test_a_cold_starts_import_is_not_on_the_functions_timeout_while_init_is_within_its_limit(pool):
    # Lambda's Init phase (10 s) is apart from the timeout: a loaded machine's slow import is not a timeout
    answer, failed = invoke(pool, function("echo", timeout=1, IMPORT_SECONDS="1.5"), {})
    assert not failed, answer
    assert answer["remaining_ms"] > 500  # the handler's clock started after the import


def test_an_init_past_its_limit_is_finished_on_the_functions_timeout(pool, monkeypatch):
    monkeypatch.setattr(execution_environment, "INIT_LIMIT_SECONDS", 0.5)
    _, failed = invoke(pool, function("echo", timeout=2, IMPORT_SECONDS="1"), {})
    assert not failed  # 0.5 s past the limit, within the timeout
    error, failed = invoke(pool, function("slow", timeout=1, IMPORT_SECONDS="3"), {"seconds": 0})
    assert failed
    assert error["errorType"] == "Sandbox.Timedout"


def test_an_unhandled_error_is_a_function_error_and_the_environment_stays(pool):
    version = function("fails")
    first, failed = invoke(pool, version, {})
    assert failed
    assert (first["errorType"], first["errorMessage"]) == ("ValueError", "no such thing")
    invoke(pool, version, {})
    assert pool.statistics.cold_starts == 1


def test_a_process_that_dies_is_an_error_and_is_replaced(pool):
    dies, failed = invoke(pool, function("dies"), {})
    assert failed
    assert dies["errorType"] == "Runtime.ExitError"
    assert dies["errorMessage"] == "Runtime exited with error: exit status 3"
    exits, _ = invoke(pool, function("exits"), {})
    assert exits == {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited with error: exit status 4"}
    assert pool.statistics.crashes == 2
    _, failed = invoke(pool, function("dies"), {})
    assert failed
    assert pool.statistics.cold_starts == 3


def test_new_code_gets_new_environments_and_the_old_code_is_not_run(pool):
    first, _ = invoke(pool, function("echo", sha="v1"), {})
    changed = HANDLERS.replace('"function": context.function_name', '"function": "changed"')
    second, _ = invoke(pool, function("echo", sha="v2"), {}, zipped=code(changed))
    assert first["function"] == "fn-echo"
    assert second["function"] == "changed"
    assert first["pid"] != second["pid"]


def test_a_missing_handler_module_is_an_import_error_on_every_invocation(pool):
    version = FunctionVersion(
        "fn-x", "arn:aws:lambda:eu-west-1:1:function:fn-x", "nothing/here.handler", {}, 5, 128, "x"
    )
    error, failed = invoke(pool, version, {})
    assert failed
    assert error["errorType"] == "Runtime.ImportModuleError"


def test_an_environment_killed_while_idle_is_replaced_before_its_next_invocation(pool):
    import os
    import signal
    import time

    first, _ = invoke(pool, function("echo"), {})
    os.kill(first["pid"], signal.SIGKILL)
    time.sleep(0.1)
    second, failed = invoke(pool, function("echo"), {})
    assert not failed  # the dead one was never handed the invocation
    assert second["pid"] != first["pid"]


def test_a_new_version_retires_the_old_versions_environments_and_a_deleted_function_all_of_them(pool):
    import time

    invoke(pool, function("echo", sha="v1"), {})
    invoke(pool, function("echo", sha="v2"), {}, zipped=code(HANDLERS + "\n# v2\n"))
    assert pool.environments() == 1
    pool.retire_function("fn-echo")
    assert pool.environments() == 0
    time.sleep(0.1)
    again, failed = invoke(pool, function("echo", sha="v2"), {})  # deployed again: it runs again
    assert not failed
    assert again["function"] == "fn-echo"


def test_a_disk_too_full_for_the_logs_changes_no_result(pool, monkeypatch):
    full = open("/dev/full", "w")  # noqa: SIM115 - every write to it fails with ENOSPC
    monkeypatch.setattr(pool, "_log", lambda _name: full)
    try:
        answer, failed = invoke(pool, function("chatty"), {})
        assert not failed, answer
        assert answer["pid"] > 0
    finally:
        full.close()


def test_time_queued_for_an_environment_is_on_the_queue_clock(tmp_path):
    lambdas = WarmLambda(sys.executable, tmp_path, {"PATH": "/usr/bin:/bin"}, per_function=1)
    try:
        before = lambdas.queue_clock()
        threads = [
            threading.Thread(target=invoke, args=(lambdas, function("slow"), {"seconds": 0.5})) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert lambdas.queue_clock() - before >= 0.4  # the second waited for the first, about 0.5 s
    finally:
        lambdas.close()


def test_a_functions_log_is_rotated_past_its_size(pool, tmp_path):
    pool.log_rotate_bytes = 10_000
    invoke(pool, function("chatty"), {})  # about 90 kB of log lines
    log = tmp_path / "logs" / "fn-chatty.log"
    assert log.stat().st_size > pool.log_rotate_bytes
    answer, failed = invoke(pool, function("chatty"), {})  # rotated before it runs
    assert not failed, answer
    rotated = log.with_name("fn-chatty.log.1")
    assert rotated.stat().st_size > pool.log_rotate_bytes
    assert "a log line" in rotated.read_text()
    text = log.read_text()
    # the environment writes on from the start of the emptied file: one invocation's lines, no hole before
    assert text.startswith("a log line that the disk will not take 0")
    assert "\0" not in text
    assert log.stat().st_size == rotated.stat().st_size
