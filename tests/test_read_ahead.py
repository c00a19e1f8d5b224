"""`storage.read_ahead`: reads in order, one ahead on another thread, errors where they belong."""

import threading
from contextlib import closing

import pytest

from mm_dagster.storage.read_ahead import read_ahead


def test_results_in_order_each_read_once_on_another_thread() -> None:
    threads: dict[int, str] = {}

    def read(n: int) -> int:
        threads[n] = threading.current_thread().name
        return n * 10

    assert list(read_ahead(read, 5, "test-reads")) == [0, 10, 20, 30, 40]
    assert sorted(threads) == [0, 1, 2, 3, 4]
    assert all(name.startswith("test-reads") for name in threads.values())
    assert list(read_ahead(read, 0)) == []


def test_the_next_read_runs_while_the_caller_holds_the_last() -> None:
    started = [threading.Event() for _ in range(3)]

    def read(n: int) -> int:
        started[n].set()
        return n

    reads = read_ahead(read, 3)
    assert next(reads) == 0
    # read 1 starts with no further call: the caller is still working on read 0
    assert started[1].wait(timeout=10)
    assert not started[2].is_set()  # only one read ahead
    assert next(reads) == 1
    assert started[2].wait(timeout=10)
    assert list(reads) == [2]


def test_a_failed_read_is_raised_in_its_place_and_stops_the_rest() -> None:
    asked: list[int] = []

    def read(n: int) -> int:
        asked.append(n)
        if n == 2:
            raise OSError("file 2 is unreadable")
        return n

    got: list[int] = []
    with pytest.raises(OSError, match="file 2 is unreadable"):
        for value in read_ahead(read, 6):
            got.append(value)
    assert got == [0, 1]
    assert asked == [0, 1, 2]


def test_closing_early_waits_for_the_read_under_way() -> None:
    release = threading.Event()
    finished: list[int] = []

    def read(n: int) -> int:
        if n == 1:
            release.wait(timeout=10)
        finished.append(n)
        return n

    with closing(read_ahead(read, 4)) as reads:
        assert next(reads) == 0
        threading.Timer(0.2, release.set).start()
    # closed: read 1 (under way when the caller stopped) has ended, none after it started
    assert finished == [0, 1]
