"""`storage.ordered_writes.OrderedWrites`: writes run in order on one thread while the caller goes
on; the first failure stops the writes after it and reaches the caller; the block waits for all."""

import threading
import time

import pytest

from mm_dagster.storage.ordered_writes import OrderedWrites


def test_writes_run_in_order_on_one_other_thread_and_the_block_waits_for_them() -> None:
    done: list[tuple[int, str]] = []
    caller = threading.current_thread().name

    def write(i: int) -> None:
        time.sleep(0.01 * (5 - i))  # the first ones slowest: order kept anyway
        done.append((i, threading.current_thread().name))

    with OrderedWrites("test-writes") as writes:
        for i in range(5):
            writes.submit(lambda i=i: write(i))
        assert len(done) < 5  # the caller went on
    assert [i for i, _ in done] == list(range(5))
    assert {name for _, name in done} != {caller} and all(n.startswith("test-writes") for _, n in done)


def test_a_failed_write_stops_the_ones_after_it_and_is_raised_at_the_next_submit() -> None:
    done: list[int] = []
    release = threading.Event()

    def fail() -> None:
        release.wait()
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), OrderedWrites() as writes:
        writes.submit(lambda: done.append(1))
        writes.submit(fail)
        writes.submit(lambda: done.append(3))  # queued behind the failure: never runs
        release.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            writes.submit(lambda: done.append(4))  # raises once the failure is known
            time.sleep(0.01)
    assert done == [1]


def _bad_row() -> None:
    raise ValueError("bad row")


def test_the_block_raises_a_failure_it_waited_for() -> None:
    with pytest.raises(ValueError, match="bad row"), OrderedWrites() as writes:
        writes.submit(lambda: None)
        writes.submit(_bad_row)


def test_when_the_caller_fails_what_it_submitted_is_still_written_and_its_own_error_raised() -> None:
    done: list[int] = []

    def slow_write() -> None:
        time.sleep(0.05)
        done.append(1)

    with pytest.raises(KeyError), OrderedWrites() as writes:
        writes.submit(slow_write)
        raise KeyError("the caller's")
    assert done == [1]


def test_a_write_failing_beside_the_callers_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def failing_later() -> None:
        release.wait()
        _bad_row()

    with pytest.raises(KeyError), OrderedWrites() as writes:
        writes.submit(failing_later)
        writes.submit(lambda: None)  # not run: after the failure
        release.set()
        raise KeyError("the caller's")
    logged = [r.getMessage() for r in caplog.records]
    assert any("2 write(s) not done" in m and "bad row" in m for m in logged), logged
