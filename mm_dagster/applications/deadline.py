"""Run one app call with a deadline, in a worker thread.

Python cannot stop a thread, so a call that overruns is *abandoned*: its daemon thread keeps
running in the background until `do_tracking` returns (its outputs are then discarded; artifacts
it writes meanwhile still land in the store), and the runner records the endpoint as failed and
goes on. The interpreter does not wait for abandoned threads at exit.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mm_dagster.core.errors import MonitoringError

T = TypeVar("T")


class AppTimeoutError(MonitoringError):
    """The app's time budget for the window ran out."""


@dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def call_with_deadline(fn: Callable[[], T], timeout: float | None, name: str = "mm-app") -> T:
    """`fn()`, raising `AppTimeoutError` if it has not returned within `timeout` seconds
    (`None`: call it inline, no thread). Whatever `fn` raises (even `SystemExit`) is re-raised here."""
    if timeout is None:
        return fn()
    if timeout <= 0:
        raise AppTimeoutError("no time left")
    outcome: _Outcome[T] = _Outcome()

    threading.Thread(target=_run, args=(fn, outcome), name=name, daemon=True).start()
    if not outcome.done.wait(timeout):
        raise AppTimeoutError("still running")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]


class DeadlineWorker:
    """`call_with_deadline` for many calls in a row (one app's calls of one window): the calls
    run one after another in one daemon thread, started once, not one thread per call. A call
    that overruns abandons the thread with it (as `call_with_deadline` does); the next call
    starts a fresh thread."""

    def __init__(self, name: str = "mm-app") -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], _Outcome[Any]] | None] | None = None

    def call(self, fn: Callable[[], T], timeout: float | None) -> T:
        if timeout is None:
            return fn()
        if timeout <= 0:
            raise AppTimeoutError("no time left")
        if self._calls is None:
            self._calls = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(self._calls,), name=self.name, daemon=True).start()
        outcome: _Outcome[T] = _Outcome()
        self._calls.put((fn, outcome))
        if not outcome.done.wait(timeout):
            self._calls.put(None)  # the thread ends once the abandoned call returns
            self._calls = None
            raise AppTimeoutError("still running")
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]

    def close(self) -> None:
        if self._calls is not None:
            self._calls.put(None)
            self._calls = None


def _serve(calls: "queue.SimpleQueue[tuple[Callable[[], Any], _Outcome[Any]] | None]") -> None:
    while (item := calls.get()) is not None:
        _run(*item)


def _run(fn: Callable[[], T], outcome: "_Outcome[T]") -> None:
    try:
        outcome.value = fn()
    except BaseException as exc:  # handed to the caller, including SystemExit
        outcome.error = exc
    finally:
        outcome.done.set()
