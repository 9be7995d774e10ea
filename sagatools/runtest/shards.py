"""A big batch on the embedded stack, run on every core: the stack is built once, then forked into one
process per shard of the batch, and each shard's sagas run on that process's copy of it.

Why: one process runs the interpreter, the handlers, moto and the runner under one interpreter lock, so a
batch used one core of the machine. Why it answers as one stack would: every item the sagas write and read
(records, saga log, attention records) is keyed by saga id, and an execution is named after its saga id,
so the sagas of one id always go to the same shard (in the batch's order: a repeated saga still finds the
execution of the first) and no saga can see another shard's state. Each shard's runner is the runner of an
unsharded run; the parent only starts the shards, forwards their progress to the observer and puts their
results back in the batch's order.

The fork happens with no thread running but the main one (the in-process Lambda's dispatcher is stopped
first and each process starts its own): where another thread runs, the batch runs unsharded.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection, Pipe, wait
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from sagatools.cli import Terminated

if TYPE_CHECKING:
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.history import StateRun
    from sagatools.request_files import RequestFile
    from sagatools.results import SagaResult
    from sagatools.runtest.runner import SagaRunner
    from sagatools.view.terminal import ProgressObserver

# Only a batch of two shards' worth or more is forked, each shard this many sagas at least. Not for speed (6
# sagas ran in 0.39 s forked, 0.55 s in one process): a small batch keeps its one-process progress exactly,
# and each shard starts with more executions than the watcher follows live (LIVE_PROGRESS_LIMIT), as the
# whole batch would.
SAGAS_PER_SHARD = 10
MAX_SHARDS = 8
_ENDING = {signal.SIGINT, signal.SIGTERM}


def shard_count(sagas: int, cores: int | None = None) -> int:
    """How many processes a batch of `sagas` runs in: one per core it may use, each with at least
    SAGAS_PER_SHARD. Linux only: elsewhere a forked process may not use every system library it inherits
    (macOS's proxy lookup, which botocore makes, is one)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if sys.platform == "linux" else 1
    return max(1, min(cores, MAX_SHARDS, sagas // SAGAS_PER_SHARD))


def partition(sagas: list[RequestFile], shards: int) -> list[list[int]]:
    """The batch's indices, `shards` ways: every index of one saga id in one shard, in the batch's order,
    the shards as even as the saga ids allow."""
    by_id: dict[str, list[int]] = {}
    for index, saga in enumerate(sagas):
        by_id.setdefault(saga.request.saga_id, []).append(index)
    parts: list[list[int]] = [[] for _ in range(shards)]
    for indices in sorted(by_id.values(), key=len, reverse=True):
        min(parts, key=len).extend(indices)
    return [sorted(part) for part in parts if part]


@dataclass
class _Shard:
    pid: int
    connection: Connection
    indices: list[int]
    started: list[str] | None = None  # the saga ids it started, once it said
    results: list[tuple[int, SagaResult]] = field(default_factory=list)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    done: bool = False


class _ForwardingObserver:
    """A shard's observer: what its runner tells, sent to the parent process."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def started(self, saga_ids: list[str]) -> None:
        self._connection.send(("started", saga_ids))

    def progress(self, saga_id: str, runs: list[StateRun], ended: bool) -> None:
        self._connection.send(("progress", saga_id, runs, ended))

    def close(self) -> None:
        pass

    def summaries(self, reports: list[SagaResult]) -> None:
        pass


class ShardError(RuntimeError):
    """A shard's process ended without handing over its results."""


def run_sharded(
    stack: EmbeddedStack,
    make_runner: Callable[[ProgressObserver | None], SagaRunner],
    sagas: list[RequestFile],
    observer: ProgressObserver | None,
    shards: int,
    log_sink: IO[str] | None,
) -> tuple[list[SagaResult], dict[str, list[dict[str, Any]]]] | None:
    """The batch's results in its order, and every execution's history; None where it cannot fork (another
    thread runs, or the handlers log to a stream that is no file: what a shard wrote there would be lost),
    and then nothing has been started."""
    if log_sink is not None and not _is_file(log_sink):
        return None
    stack.lambdas.stop()
    if threading.active_count() != 1:
        stack.lambdas.start()
        return None
    # What the start made lives as long as the processes: frozen out of the cyclic collector before the fork
    # (gc.freeze's documented use), so the collector's visits do not copy every shared page into each shard.
    gc.freeze()
    for stream in filter(None, (sys.stdout, sys.stderr, log_sink)):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()  # a buffered line must not be written by every process
    running: list[_Shard] = []
    try:
        for indices in partition(sagas, shards):
            share = [sagas[i] for i in indices]
            _fork(
                running,
                indices,
                partial(_run_shard, stack, make_runner, share, indices, observer is not None, log_sink),
            )
        return _collect(running, observer, sagas)
    finally:
        for shard in running:
            with contextlib.suppress(OSError):
                if not shard.done:
                    os.kill(shard.pid, signal.SIGKILL)
                os.waitpid(shard.pid, 0)
            shard.connection.close()
        stack.lambdas.start()  # the stack is this process's again


def _is_file(stream: IO[str]) -> bool:
    try:
        stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError and a ValueError
        return False
    return True


def _fork(running: list[_Shard], indices: list[int], body: Callable[[Connection], NoReturn]) -> None:
    """A shard of those `indices`, running `body` with its end of the pipe, listed in `running`."""
    receiver, sender = Pipe(duplex=False)
    # Ctrl-C and SIGTERM reach the whole process group: the parent says so, a shard just ends. They are held
    # over the fork, so none reaches a shard before it has let go of the parent's handlers.
    signal.pthread_sigmask(signal.SIG_BLOCK, _ENDING)
    try:
        pid = os.fork()
        if pid == 0:  # the shard: it never returns
            for number in _ENDING:
                signal.signal(number, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _ENDING)
            receiver.close()
            body(sender)
        running.append(_Shard(pid, receiver, indices))  # listed before a held signal can end the run: it ends this too
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _ENDING)
    sender.close()


def _run_shard(
    stack: EmbeddedStack,
    make_runner: Callable[[ProgressObserver | None], SagaRunner],
    sagas: list[RequestFile],
    indices: list[int],
    observed: bool,
    log_sink: IO[str] | None,
    connection: Connection,
) -> NoReturn:
    code = 0
    try:
        _end_with_parent()
        if log_sink is not None:
            stack.log_to(cast("IO[str]", _WholeLines(log_sink)))  # every shard writes to the one log
        stack.lambdas.start()
        runner = make_runner(_ForwardingObserver(connection) if observed else None)
        reports = runner.run(sagas)
        connection.send(("done", list(zip(indices, reports, strict=True)), runner.histories))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
        code = 1
        with contextlib.suppress(BaseException):
            connection.send(("error", _transferable(error)))
    finally:
        with contextlib.suppress(BaseException):
            stack.lambdas.log_sink.flush()
        os._exit(code)


class _WholeLines(io.TextIOBase):
    """A shard's handler log: the text of each complete line goes to the shared descriptor in one write(2),
    so the lines of two shards never interleave (a log record is far below the 4 KB a pipe writes whole)."""

    def __init__(self, shared: IO[str]) -> None:
        self._descriptor = shared.fileno()
        self._encoding = getattr(shared, "encoding", None) or "utf-8"
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self._write(lines + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._write(self._pending)
            self._pending = ""

    def _write(self, text: str) -> None:
        data = memoryview(text.encode(self._encoding, errors="backslashreplace"))
        while data:
            data = data[os.write(self._descriptor, data) :]


def _transferable(error: BaseException) -> BaseException:
    import pickle

    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - anything unpicklable is sent as its text
        return ShardError(f"{type(error).__name__}: {error}")
    return error


def _end_with_parent() -> None:
    """On Linux, the kernel ends a shard whose parent died (killed with no chance to stop it)."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)


def _collect(
    running: list[_Shard], observer: ProgressObserver | None, sagas: list[RequestFile]
) -> tuple[list[SagaResult], dict[str, list[dict[str, Any]]]]:
    """Every shard's messages until each is done: progress forwarded (after the one `started` of the whole
    batch, in its order), results put back by index."""
    by_connection = {shard.connection: shard for shard in running}
    held: list[tuple[str, list[StateRun], bool]] = []  # progress before every shard had started
    announced = False
    while not all(shard.done for shard in running):
        for ready in wait([shard.connection for shard in running if not shard.done]):
            shard = by_connection[ready]  # type: ignore[index]
            try:
                message = shard.connection.recv()
            except EOFError:
                raise _ended_without_results(shard) from None
            kind = message[0]
            if kind == "started":
                shard.started = message[1]
            elif kind == "progress":
                held.append(message[1:])
            elif kind == "done":
                shard.results, shard.histories, shard.done = message[1], message[2], True
            else:
                shard.done = True
                raise message[1]
        if observer is not None:
            if not announced and all(shard.started is not None or shard.done for shard in running):
                observer.started(_in_batch_order(running, sagas))
                announced = True
            if announced:
                for saga_id, runs, ended in held:
                    observer.progress(saga_id, runs, ended)
                held.clear()
    reports: list[SagaResult | None] = [None] * len(sagas)
    histories: dict[str, list[dict[str, Any]]] = {}
    for shard in running:
        for index, report in shard.results:
            reports[index] = report
        histories.update(shard.histories)
    assert all(report is not None for report in reports)
    return reports, histories  # type: ignore[return-value]


def _in_batch_order(running: list[_Shard], sagas: list[RequestFile]) -> list[str]:
    """The saga ids the shards started, as one runner would have listed them: in the batch's order."""
    started = {saga_id for shard in running for saga_id in shard.started or []}
    return list(dict.fromkeys(saga.request.saga_id for saga in sagas if saga.request.saga_id in started))


def _ended_without_results(shard: _Shard) -> BaseException:
    code = os.waitstatus_to_exitcode(os.waitpid(shard.pid, 0)[1])  # -N: killed by signal N
    shard.done = True
    if code == -signal.SIGINT:
        return KeyboardInterrupt()
    if code == -signal.SIGTERM:
        return Terminated()
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return ShardError(
        f"the process running {len(shard.indices)} of the batch's sagas ended before it handed over their results"
        f" ({how}): this run has no results; run the batch again"
    )
