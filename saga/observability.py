"""The Powertools logger, tracer and metrics shared by the handlers and the steps.

Configured by the POWERTOOLS_* variables set in serverless.yml (service name, metrics namespace).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class _UntracedSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...

    def add_subsegment(self, subsegment: Any) -> None: ...

    def remove_subsegment(self, subsegment: Any) -> None: ...

    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class UntracedProvider(BaseProvider):
    """The tracer's provider where tracing is off (see `_tracing_off`): it records nothing.

    Powertools builds the X-Ray SDK's recorder even for a disabled tracer, and the SDK creates two X-Ray
    clients as it is imported (a quarter of a second of every local run, for traces nobody sends).
    """

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _UntracedSegment()

    def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AbstractAsyncContextManager[BaseSegment]:
        @asynccontextmanager
        async def segment() -> Any:
            yield _UntracedSegment()

        return segment()

    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...

    def patch(self, modules: Sequence[str]) -> None: ...

    def patch_all(self) -> None: ...


def _tracing_off() -> bool:
    # Powertools' own rule (POWERTOOLS_TRACE_DISABLED, or not on Lambda, or in SAM/Chalice), so on Lambda with
    # tracing on the tracer is the X-Ray one exactly as before.
    return bool(Tracer._is_tracer_disabled())


logger = Logger()
# Only botocore is patched: its subsegments are the DynamoDB calls we want to see. The default
# (patch_all) also imports and patches sqlite3, http.client and whatever else is installed, which
# costs cold-start time and adds nothing here (docs/BENCHMARKS.md, cold start).
tracer = Tracer(patch_modules=("botocore",), provider=UntracedProvider() if _tracing_off() else None)
metrics = Metrics()
