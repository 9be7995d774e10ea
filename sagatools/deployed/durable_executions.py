"""A deployed durable function's executions, through Lambda's durable execution API: started by name (the saga id),
described as Step Functions' DescribeExecution describes a state machine's execution, and their history read as the
testing SDK's events (what sagatools/durable_history.py reads), so runtest.sh and attention.sh read either
coordinator alike.

Lambda's idempotency by execution name (the Invoke API's DurableExecutionName): a name that already names an
execution of the same payload returns that execution; of another payload, DurableExecutionAlreadyStartedException.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sagatools.deployed.stage import Stage, StageError
from sagatools.durable_history import durable_operations
from sagatools.generate.template import DURABLE_FUNCTION_OUTPUT

if TYPE_CHECKING:
    from aws_durable_execution_sdk_python_testing.model import Event
    from botocore.client import BaseClient

CONFLICT_CODE = "DurableExecutionAlreadyStartedException"  # Invoke: the name holds an execution of another payload
# Lambda's execution statuses in Step Functions' words: a paused execution has not ended, a stopped one was aborted.
STATUSES = {
    "RUNNING": "RUNNING",
    "PAUSING": "RUNNING",
    "PAUSED": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMED_OUT": "TIMED_OUT",
    "STOPPED": "ABORTED",
    "DELETING": "ABORTED",  # deleted (DeleteDurableExecution): it runs no further
}
RUNNING_STATUSES = [status for status, said in STATUSES.items() if said == "RUNNING"]
PAGE_SIZE = 1000  # the most ListDurableExecutionsByFunction and GetDurableExecutionHistory give a page
NAME = "DurableExecutionName"


class ExecutionAlreadyExists(Exception):
    """The execution name already names an execution of the function with a different payload."""


class DurableExecutions:
    """The durable executions of one function, started through its qualified ARN (the stage's alias ARN, stack output
    DurableFunctionAliasArn)."""

    @classmethod
    def of_stage(cls, stage: Stage, outputs: dict[str, str]) -> DurableExecutions:
        """The executions of the stage's durable function, from its stack's outputs."""
        try:
            function = outputs[DURABLE_FUNCTION_OUTPUT]
        except KeyError:
            raise StageError(
                f"The stack has no {DURABLE_FUNCTION_OUTPUT} output: redeploy it with ./build.sh deploy."
            ) from None
        return cls(stage.client("lambda"), function)

    def __init__(self, lambda_client: BaseClient, qualified_function_arn: str) -> None:
        self.client = lambda_client
        self.qualified_function_arn = qualified_function_arn
        # Names are unique within the function, whichever version ran them: listed across its versions (a Qualifier
        # filters by version, and a redeploy points the alias at a new one).
        self.function_arn = unqualified(qualified_function_arn)
        self.alias = qualified_function_arn[len(self.function_arn) + 1 :] or None

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start the execution `name` of `payload` (asynchronously) and return its ARN; an execution of that name and
        payload that exists already is returned instead. ExecutionAlreadyExists if the name holds another payload."""
        try:
            answer = self.client.invoke(
                FunctionName=self.qualified_function_arn,
                InvocationType="Event",
                DurableExecutionName=name,
                Payload=json.dumps(payload).encode(),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == CONFLICT_CODE:
                raise ExecutionAlreadyExists(
                    f"durable execution {name} of {self.function_arn} already exists with a different payload"
                ) from error
            raise
        arn: str | None = answer.get("DurableExecutionArn")  # not a required member of Invoke's answer
        if arn is None:
            described = self.describe(name)
            if described is None:
                raise StageError(
                    f"Lambda started durable execution {name} of {self.function_arn} but does not list it yet: run"
                    " the same command again to follow it."
                )
            arn = str(described["executionArn"])
        return arn

    def describe(self, name: str) -> dict[str, Any] | None:
        """The execution named `name` as DescribeExecution describes a state machine's (the latest, should the name
        have been used again after an earlier one's retention ended); None when no execution has that name."""
        # Lambda's filter may match more than the name (its documentation says "matches" in one SDK, "contains" in
        # another): t-1 must never be taken for t-1-resolve-1 or t-10.
        found = [execution for execution in self._listed(DurableExecutionName=name) if execution.get(NAME) == name]
        if not found:
            return None
        latest = max(found, key=lambda execution: execution["StartTimestamp"])
        return self.describe_execution(latest["DurableExecutionArn"])

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        """The execution as DescribeExecution describes a state machine's: executionArn, status (in Step Functions'
        words), error (its type's class name, as Step Functions names a Lambda error), cause, input, startDate,
        stopDate."""
        execution = self.client.get_durable_execution(DurableExecutionArn=execution_arn, IncludeExecutionData=True)
        error = execution.get("Error") or {}
        error_type = error.get("ErrorType")
        return {
            "executionArn": execution["DurableExecutionArn"],
            "status": STATUSES.get(execution["Status"], execution["Status"]),
            "error": error_type.rpartition(".")[2] if error_type else None,
            "cause": error.get("ErrorMessage"),
            "input": execution.get("InputPayload"),
            "startDate": execution.get("StartTimestamp"),
            "stopDate": execution.get("EndTimestamp"),
        }

    def history(self, execution_arn: str) -> list[Event]:
        """Every event of the execution, oldest first, as the testing SDK's events (boto3's dicts are what
        Event.from_dict reads: the same keys, timestamps already datetimes)."""
        # The testing SDK's model is half a second to import: only where a history is read.
        from aws_durable_execution_sdk_python_testing.model import Event

        pages = self.client.get_paginator("get_durable_execution_history").paginate(
            DurableExecutionArn=execution_arn, IncludeExecutionData=True, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return [Event.from_dict(event) for page in pages for event in page["Events"]]

    def running(self) -> set[str]:
        """The ARNs of the function's executions that have not ended (eventually consistent: a hint, not an end)."""
        return {execution["DurableExecutionArn"] for execution in self._listed(Statuses=RUNNING_STATUSES)}

    def _listed(self, **filters: Any) -> list[dict[str, Any]]:
        """The function's executions that pass `filters`, across its versions. botocore's model says an unqualified
        list gives every version's; older SDK pages say only $LATEST's, which would leave out every execution started
        through the alias: when the unqualified list finds nothing, the alias's is read too (a call more, never a
        miss)."""
        found = self._list_pages(FunctionName=self.function_arn, **filters)
        if not found and self.alias is not None:
            found = self._list_pages(FunctionName=self.function_arn, Qualifier=self.alias, **filters)
        return found

    def _list_pages(self, **parameters: Any) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_durable_executions_by_function").paginate(
            **parameters, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return [execution for page in pages for execution in page["DurableExecutions"]]

    @staticmethod
    def operations(events: list[Event]) -> int:
        """The durable operations AWS meters for an execution of these events (sagatools/durable_history.py)."""
        return durable_operations(events)


def unqualified(function_arn: str) -> str:
    """The function's ARN without its version or alias: arn:partition:lambda:region:account:function:name."""
    return ":".join(function_arn.split(":")[:7])
