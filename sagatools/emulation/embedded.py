"""The embedded stack: the real ASL and the real handlers on moto, in this process, no AWS account.

- Step Functions: moto's ASL interpreter (`execute_state_machine`), one thread per execution.
- DynamoDB: moto, tables created from serverless.yml.
- Lambda: the interpreter's Lambda tasks call `InvokeOnlyClient`, which answers Invoke as moto's Lambda
  API would with `InProcessLambda` behind it: it imports the handler named in serverless.yml and calls it
  with a Lambda-like context, one at a time. moto's Lambda is never loaded.
- Retry waits: moto sleeps for real in its retrier; here they are recorded and skipped, so a failure
  scenario runs in milliseconds while the ASL keeps its real intervals.
- Transactions: moto's whole-table snapshot is replaced by an item-level undo (transactions.py).
- The definition is parsed once, and the interpreter's boto3 clients are reused (speedups.py).
Every change to moto is a `Change` (changes.py), checked when the stack applies it: a speed-up that does not
fit the installed moto is skipped, a change the results depend on stops the run in one sentence.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import warnings
from typing import IO, TYPE_CHECKING

import boto3
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from saga.catalogue import SAGA_LOG_TABLE_OUTPUT, SAGA_LOG_TABLE_VARIABLE
from saga.clients import dynamodb_client
from saga.settings import Settings, get_settings
from sagatools.asl import RESOLVE_MACHINE, SAGA_MACHINE, MachineSpec, fill_placeholders, placeholders
from sagatools.emulation import speedups
from sagatools.emulation.changes import Change, Replacement, checked, expect, expect_parameters, moto_at_least
from sagatools.emulation.environment import EMBEDDED_STAGE, FAKE_ENVIRONMENT, LOCAL_ENVIRONMENT, REGION
from sagatools.emulation.in_process_lambda import InProcessLambda, InvokeOnlyClient
from sagatools.emulation.transactions import TRANSACTIONS
from sagatools.serverless_config import ServiceConfig, load_service_config

if TYPE_CHECKING:
    from botocore.client import BaseClient

# moto's interpreter logs every caught error at ERROR level; the history records them already.
QUIET_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID
# moto times a Task by the wall clock, and here that includes the time an invocation waits for the
# one-at-a-time dispatcher behind every other execution's: in a 200-saga batch that queue, not the
# handler, reached the ASL's 30 s and sent sagas down the timeout path. Locally, tasks get 10x.
TIMEOUT_SCALE = 10


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


class VirtualRetryClock:
    """Stands in for the `time` module in moto's retrier: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.requested_waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.requested_waits.append(seconds)


def _in_process_lambda(lambda_client: object) -> list[Replacement]:
    """The interpreter's Lambda tasks get `lambda_client` (InvokeOnlyClient) from the function that makes their
    client (moto calls it for Lambda only)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    expect_parameters(lambda_eval_utils.boto_client_for, ["region", "service", "state_credentials"])  # type: ignore[attr-defined]

    def client_for(region: str, service: str, state_credentials: object = None) -> object:
        return lambda_client

    return [(lambda_eval_utils, "boto_client_for", client_for)]


def _virtual_retry_clock(clock: VirtualRetryClock) -> list[Replacement]:
    """moto's retrier sleeps through `time.sleep` of its module's `time`: that name gets the clock."""
    import time

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    expect(retrier_decl.time is time, "the retrier's time module")  # type: ignore[attr-defined]
    return [(retrier_decl, "time", clock)]


def _concurrent_executions() -> list[Replacement]:
    # Before 5.2, StartExecution deep-copied the state machine with its running executions, and a second
    # saga started while one ran failed (moto issue 10077): a batch needs 5.2 or newer. Nothing is replaced.
    expect(moto_at_least("5.2"), "StartExecution while another execution runs needs moto 5.2 or newer")
    return []


CONCURRENT_EXECUTIONS = Change("sagas run at once", True, _concurrent_executions)


class EmbeddedStack:
    """A context manager: inside it, boto3 talks to the embedded stack.

    Entering is all or nothing: whatever fails after the first change (a bad definition, a table
    moto refuses), every patch, the mock and the environment variables are undone before the error
    leaves `__enter__`.
    """

    def __init__(
        self, stage: str = EMBEDDED_STAGE, log_sink: IO[str] | None = None, create_state_machine: bool = True
    ) -> None:
        self._create_state_machine = create_state_machine
        self.config: ServiceConfig = load_service_config(stage)
        self.retry_clock = VirtualRetryClock()
        self.lambdas = InProcessLambda(list(self.config.functions.values()), log_sink or io.StringIO(), function_arn)
        self.state_machine_arn = ""
        self._resolution_state_machine_arn = ""
        self._resolution_lock = threading.Lock()
        self._live = False  # entered and not yet exited
        self._undo = contextlib.ExitStack()
        self._clients: dict[str, BaseClient] = {}

    def __enter__(self) -> EmbeddedStack:
        with contextlib.ExitStack() as undo:
            undo.callback(self._clients.clear)  # clients belong to one mock session
            self._quiet_moto(undo)
            self._set_environment(undo, {**FAKE_ENVIRONMENT, **self.config.process_environment, **LOCAL_ENVIRONMENT})
            # The handlers read their settings and build their client once per process, as on Lambda;
            # in this process each stack is a new deployment of them.
            for cached in (get_settings, dynamodb_client):
                cached.cache_clear()
                undo.callback(cached.cache_clear)
            mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
            mock.start()
            undo.callback(mock.stop)
            self.lambdas.start()
            undo.callback(self.lambdas.stop)
            self._patch(undo)
            definitions = {machine: self.definition_of(machine) for machine in (SAGA_MACHINE, RESOLVE_MACHINE)}
            speedups.warm_up(list(definitions.values()))
            for request in self.config.create_table_requests():
                self.dynamodb.create_table(**request)
            if self._create_state_machine:  # the resolution machine: when first asked for (runtest.sh never does)
                self.state_machine_arn = self._create(SAGA_MACHINE, definitions[SAGA_MACHINE])
            undo.callback(setattr, self, "_resolution_state_machine_arn", "")
            undo.callback(setattr, self, "_live", False)
            self._live = True
            self._undo = undo.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._undo.close()

    @property
    def resolution_state_machine_arn(self) -> str:
        """attention.sh's state machine, created the first time it is asked for (about 15 ms of a start)."""
        with self._resolution_lock:
            if self._live and self._create_state_machine and not self._resolution_state_machine_arn:
                self._resolution_state_machine_arn = self._create(RESOLVE_MACHINE, self.definition_of(RESOLVE_MACHINE))
            return self._resolution_state_machine_arn

    def _create(self, machine: MachineSpec, definition: str) -> str:
        arn: str = self.stepfunctions.create_state_machine(
            name=self.machine_name(machine),
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.config.service}-{self.config.stage}-{machine.suffix}",
            type="STANDARD",
        )["stateMachineArn"]
        return arn

    def changes(self) -> tuple[Change, ...]:
        """Every change this stack makes to moto: those its results depend on, then the speed-ups."""
        lambda_client = InvokeOnlyClient(self.lambdas)
        return (
            Change("Lambda tasks invoke the handlers in this process", True, lambda: _in_process_lambda(lambda_client)),
            Change("retry waits recorded, not slept", True, lambda: _virtual_retry_clock(self.retry_clock)),
            CONCURRENT_EXECUTIONS,
            TRANSACTIONS,
            *speedups.SPEED_UPS,
            speedups.URL_BUILDERS,
        )

    def _patch(self, undo: contextlib.ExitStack) -> None:
        for owner, name, replacement in checked(self.changes()):
            self._replace(undo, owner, name, replacement)
        # Powertools' log handler keeps the stream it was created with (stdout): point it at the sink.
        from saga.observability import logger

        self._replace(undo, logger.registered_handler, "stream", self.lambdas.log_sink)

    def log_to(self, sink: IO[str]) -> None:
        """The handlers log to `sink` from now on (a forked process of a batch gets its own writer)."""
        from saga.observability import logger

        self.lambdas.log_sink = sink
        logger.registered_handler.stream = sink  # type: ignore[attr-defined]

    @staticmethod
    def _quiet_moto(undo: contextlib.ExitStack) -> None:
        # moto's interpreter logs every caught error at ERROR level; the history records them already.
        moto_log = logging.getLogger(QUIET_LOGGER)
        undo.callback(moto_log.setLevel, moto_log.level)
        moto_log.setLevel(logging.CRITICAL)
        # A refused request publishes no metric, and Powertools warns about that on every such call.
        undo.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="No application metrics to publish")

    @staticmethod
    def _set_environment(undo: contextlib.ExitStack, values: dict[str, str]) -> None:
        saved = {name: os.environ.get(name) for name in values}

        def restore() -> None:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        undo.callback(restore)
        os.environ.update(values)

    @staticmethod
    def _replace(undo: contextlib.ExitStack, owner: object, name: str, value: object) -> None:
        undo.callback(setattr, owner, name, getattr(owner, name))
        setattr(owner, name, value)

    @property
    def substitutions(self) -> dict[str, str]:
        values = {spec.step.arn_output: function_arn(spec.name) for spec in self.config.functions.values()}
        values[SAGA_LOG_TABLE_OUTPUT] = self.config.environment[SAGA_LOG_TABLE_VARIABLE]
        return values

    @property
    def state_machine_name(self) -> str:
        return self.machine_name(SAGA_MACHINE)

    def machine_name(self, machine: MachineSpec) -> str:
        return f"{self.config.service}-{self.config.stage}-{machine.suffix}"

    @property
    def definition(self) -> str:
        return self.definition_of(SAGA_MACHINE)

    def definition_of(self, machine: MachineSpec) -> str:
        """The ASL as deployed, but with every TimeoutSeconds scaled by TIMEOUT_SCALE (see there)."""
        definition = fill_placeholders(self.substitutions, machine.asl_path)
        if missing := placeholders(definition):
            raise ValueError(f"the embedded stack has no value for {', '.join(sorted(missing))}")
        parsed = json.loads(definition)
        for state in parsed["States"].values():
            if "TimeoutSeconds" in state:
                state["TimeoutSeconds"] *= TIMEOUT_SCALE
        return json.dumps(parsed)

    @property
    def settings(self) -> Settings:
        """The handlers' settings as the embedded stack sets them (for reading the tables back)."""
        return Settings.read({**self.config.process_environment, **LOCAL_ENVIRONMENT})

    def session_client(self, service: str) -> BaseClient:
        """One client per service for this stack's life (a client costs ~10 ms to make; boto3's are thread-safe)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=REGION)
        return self._clients[service]

    @property
    def stepfunctions(self) -> BaseClient:
        return self.session_client("stepfunctions")

    @property
    def dynamodb(self) -> BaseClient:
        return self.session_client("dynamodb")
