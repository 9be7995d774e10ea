"""A signal that lands while a class is being made (an import) or while a finalizer runs still ends the tool as
that signal, and nothing is printed of it."""

from __future__ import annotations

import signal as signals
import time

import pytest

from sagatools.cli import Terminated, taking_signals


class _Interrupted:
    def __init__(self, signal: BaseException) -> None:
        self.signal = signal

    def __set_name__(self, owner: type, name: str) -> None:
        raise self.signal


@pytest.mark.parametrize("signal", [KeyboardInterrupt(), Terminated()], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_class_being_made_reaches_the_tool_as_itself(signal):
    # Given a signal raised while a class body's descriptors are named (Python wraps that in RuntimeError)
    # When it happens inside a tool's main / Then the tool sees the signal, not a RuntimeError
    with pytest.raises(type(signal)), taking_signals(None):
        type("Made", (), {"attribute": _Interrupted(signal)})


class _Finalized:
    def __init__(self, signal: BaseException) -> None:
        self.signal = signal

    def __del__(self) -> None:
        raise self.signal  # what the tool's handler raises when the signal lands in a finalizer (a pipe's __del__)


def _finalize_then_go_on(signal: BaseException) -> None:
    _Finalized(signal)  # dropped at once: its finalizer raises
    waiting_until = time.monotonic() + 5
    while time.monotonic() < waiting_until:  # the tool's work goes on, and the signal sent again lands in it
        time.sleep(0.001)


@pytest.mark.parametrize("signal", [KeyboardInterrupt(), Terminated()], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_finalizer_is_sent_again_not_printed_and_lost(signal, capsys):
    # Given the signals handled as a tool's main handles them (Ctrl-C raising KeyboardInterrupt)
    interrupting = signals.signal(signals.SIGINT, signals.default_int_handler)
    try:
        # When a signal lands while a finalizer runs / Then the tool still ends with it, at the next instruction
        with pytest.raises(type(signal)), taking_signals(None):
            _finalize_then_go_on(signal)
    finally:
        signals.signal(signals.SIGINT, interrupting)
    # and Python printed nothing of the finalizer's exception ("Exception ignored in … Traceback")
    assert capsys.readouterr().err == ""
