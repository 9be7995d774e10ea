"""The local endpoint's process: moto in server mode on 127.0.0.1, adapted to run a deployed stage.

    python -m sagatools.emulation.local_server_process --port PORT --state-dir DIR --python RUNTIME_PYTHON [--token T]

Started in the background by `./build.sh local start` (sagatools/deployed/local_endpoint.py). What it
changes in moto, each checked when applied (changes.py: a speed-up that does not fit is skipped, any other
change stops the endpoint in one sentence):
- Step Functions executes state machines, with the embedded stack's virtual retry waits;
- Lambda never uses Docker: an invocation runs the function's deployed zip in a warm execution
  environment (warm_lambda.py), with the function's handler, environment, timeout and memory;
- ValidateTemplate answers with cfn-lint's errors only (moto also fails on warnings, and the
  Serverless CLI writes W3005 on every function);
- DynamoDB transactions and the interpreter's costs get the embedded stack's adaptations;
- the interpreter's own calls back to this server (its Lambda and DynamoDB tasks) sign with the endpoint's
  credentials, not moto's fixed "ak"/"sk".
It serves only its owner: every request must be signed with the credentials `start` wrote to the state
folder's `credentials` file (signed_requests.py); the functions run as the endpoint's user.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

import boto3
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudformation.models import CloudFormationBackend
from moto.core import config as moto_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.utils import boto_client
from werkzeug.serving import BaseWSGIServer, make_server

from sagatools.emulation import speedups
from sagatools.emulation.changes import Change, MotoUnsupported, Replacement, checked, expect
from sagatools.emulation.embedded import VirtualRetryClock
from sagatools.emulation.environment import FAKE_ENVIRONMENT
from sagatools.emulation.execution_environment import FunctionVersion
from sagatools.emulation.signed_requests import OwnerOnly
from sagatools.emulation.transactions import TRANSACTIONS
from sagatools.emulation.warm_lambda import WarmLambda
from sagatools.fake_credentials import EndpointCredentials

_original_validate_template = CloudFormationBackend.validate_template


def _errors_only(backend: CloudFormationBackend, template: str) -> list[Any]:
    """cfn-lint's errors (rule ids E...): what CloudFormation itself would refuse; warnings pass, as on AWS."""
    return [match for match in _original_validate_template(backend, template) if match.rule.id.startswith("E")]


def _lambda_invoke(pool: WarmLambda) -> Any:
    def invoke(
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        _headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        function = backend.get_function(function_name, qualifier)
        region = function.function_arn.split(":")[3]  # a function runs in its own region, as on AWS
        version = FunctionVersion(
            name=function.function_name,
            arn=function.function_arn,
            handler=str(function.handler),
            environment={
                **{key: str(value) for key, value in (function.environment_vars or {}).items()},
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
            },
            timeout_seconds=int(function.timeout),
            memory_mb=int(function.memory_size),
            code_sha=function.code_sha_256,
        )
        payload = body.decode() if isinstance(body, bytes) else str(body or "")
        response, failed = pool.invoke(version, function.code_bytes, payload)
        if failed:
            response_headers["x-amz-function-error"] = "Unhandled"
        return response

    return invoke


class _QueueAwareEvent(threading.Event):
    """moto times a Task with Event.wait(TimeoutSeconds): here the wait is lengthened by the time
    invocations spent queued for an environment meanwhile (WarmLambda.queue_clock)."""

    pool: WarmLambda

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        started, queued_before = time.monotonic(), self.pool.queue_clock()
        deadline = started + timeout
        while not super().wait(max(0.0, deadline - time.monotonic())):
            lengthened = started + timeout + (self.pool.queue_clock() - queued_before)
            if lengthened <= deadline:
                return False
            deadline = lengthened
        return True


class _TaskTiming:
    """Stands in for the `threading` module in moto's execute_state: the same, but its Event is queue-aware."""

    def __init__(self, pool: WarmLambda) -> None:
        self.Event = type("QueueAwareEvent", (_QueueAwareEvent,), {"pool": pool})

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


class _SignedBoto3:
    """Stands in for the `boto3` module in moto's boto_client_for: the same, but the clients it makes sign
    with the endpoint's credentials (moto's are "ak"/"sk", which the endpoint refuses like any stranger's)."""

    def __init__(self, credentials: EndpointCredentials) -> None:
        self.credentials = credentials

    def client(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["aws_access_key_id"] = self.credentials.access_key_id
        kwargs["aws_secret_access_key"] = self.credentials.secret_access_key
        return boto3.client(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(boto3, name)


_original_delete_function = LambdaSimpleBackend.delete_function


def _lambda_delete(pool: WarmLambda) -> Any:
    def delete_function(backend: LambdaSimpleBackend, function_name: str, qualifier: str | None = None) -> None:
        _original_delete_function(backend, function_name, qualifier)
        pool.retire_function(function_name.rsplit(":", 1)[-1])  # a remove leaves no environment behind

    return delete_function


def replacements(pool: WarmLambda, credentials: EndpointCredentials) -> list[Replacement]:
    """(owner, attribute, replacement) of every moto internal the endpoint changes, each checked (changes.py)."""

    def endpoint() -> list[Replacement]:
        targets = (
            (boto_client, "boto3"),
            (execute_state, "threading"),
            (retrier_decl, "time"),
            (LambdaSimpleBackend, "invoke"),
            (LambdaSimpleBackend, "delete_function"),
            (CloudFormationBackend, "validate_template"),
        )
        for owner, name in targets:
            expect(hasattr(owner, name), f"{getattr(owner, '__name__', owner)}.{name}")
        return [
            (boto_client, "boto3", _SignedBoto3(credentials)),
            (LambdaSimpleBackend, "invoke", _lambda_invoke(pool)),
            (LambdaSimpleBackend, "delete_function", _lambda_delete(pool)),
            (execute_state, "threading", _TaskTiming(pool)),
            (retrier_decl, "time", VirtualRetryClock()),
            (CloudFormationBackend, "validate_template", _errors_only),
        ]

    return checked(
        (
            Change("the endpoint's Lambda, signing, task timing and retry clock", True, endpoint),
            TRANSACTIONS,
            *speedups.SPEED_UPS,
            speedups.SHARED_LAMBDA_TASK_CLIENTS,
            speedups.URL_BUILDERS,
        )
    )


def hold_the_lock(state_dir: Path) -> IO[str]:
    """endpoint.lock, held for the server's life: how start, stop and status know an endpoint runs (and
    which), however busy it is; a second server in the same folder refuses to start."""
    handle = (state_dir / "endpoint.lock").open("a")  # not inherited by the environments (PEP 446)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SystemExit(f"local endpoint: another one runs in {state_dir} (it holds endpoint.lock)") from None
    return handle


def bind(preferred: int, credentials: EndpointCredentials, where: str) -> BaseWSGIServer:
    """The server on the preferred port, or on one the system picks if that is taken (bound here, so two
    endpoints started at once can never both think they have the same port); it serves only requests
    signed with `credentials` (kept in `where`)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does: a restart gets its port
    try:
        listening.bind(("127.0.0.1", preferred))
    except OSError:
        listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    # werkzeug takes an open socket by its descriptor (and exits the process on a port it cannot bind).
    application = OwnerOnly(DomainDispatcherApplication(create_backend_app), credentials, where)
    port = listening.getsockname()[1]
    server = make_server(
        "127.0.0.1", port, application, True, request_handler=MotoRequestHandler, fd=listening.fileno()
    )
    listening.detach()  # the server's socket owns the descriptor now
    return server


def serve(preferred_port: int, state_dir: Path, python: str, token: str = "") -> None:
    lock = hold_the_lock(state_dir)
    credentials_file = state_dir / "credentials"
    credentials = EndpointCredentials.read(credentials_file)
    if credentials is None:  # never served unguarded
        raise SystemExit(f"local endpoint: no credentials in {credentials_file} (./build.sh local start writes them)")
    server = bind(preferred_port, credentials, str(credentials_file.resolve()))
    port = server.port
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({**FAKE_ENVIRONMENT, **credentials.environment()})
    os.environ["MOTO_PORT"] = str(port)  # the interpreter's own calls back to this server
    # Before the first request: which Lambda backend and whether executions run are read per request.
    moto_config.default_user_config["lambda"] = {"use_docker": False}
    moto_config.default_user_config["stepfunctions"] = {"execute_state_machine": True}
    handler_env = {
        **credentials.environment(),  # the functions' own calls back to this endpoint
        "AWS_ENDPOINT_URL": endpoint,
        # No X-Ray daemon here: the handlers' traces go nowhere (a documented difference from AWS).
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    pool = WarmLambda(python, state_dir.resolve(), handler_env)
    with contextlib.ExitStack() as undo:
        undo.callback(lock.close)
        undo.callback(pool.close)
        for owner, name, replacement in replacements(pool, credentials):
            undo.callback(setattr, owner, name, getattr(owner, name))
            setattr(owner, name, replacement)
        undo.callback(server.server_close)
        # What start waits for: this process's port, under its token (a port that answers may be another's).
        (state_dir / "endpoint.port").write_text(json.dumps({"token": token, "port": port}))

        def stop(_signal: int, _frame: FrameType | None) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print(f"local endpoint {endpoint}: handlers run on {python}", flush=True)
        server.serve_forever(poll_interval=0.1)  # how soon a stop is seen (werkzeug's default: 0.5 s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--python", required=True, help="the Python that runs the handlers")
    parser.add_argument("--token", default="", help="the endpoint record's token: names this process as its")
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.state_dir, args.python, args.token)
    except MotoUnsupported as error:
        print(f"local endpoint: {error}", file=sys.stderr)
        return 2
    return 0
