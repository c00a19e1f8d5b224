"""Reads done one step ahead on a thread of their own while the caller works on the last one.

A window analysed in parts reads part n + 1 while the apps analyse part n: most of a read is
Arrow's scan and numpy's copies, which release the GIL, so on a machine with a core to spare the
read costs the analysis little. Two reads' results are alive at most: the one the caller holds
and the one being read (the caller lets go of each before asking for the next, so the memory
of part n - 1 can hold part n + 1: `storage.float_block.FloatBuffer`).
"""

from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def read_ahead(read: Callable[[int], T], count: int, name: str = "mm-reads") -> Generator[T, None, None]:
    """`read(0)`, ..., `read(count - 1)` in order, each started on a thread of its own when the
    one before it is handed out (the first at once). A read's error is raised where its result
    would have been handed out; the reads after it are not started. Closing the iterator early
    (`contextlib.closing`, or its end) waits for the read under way and drops its result."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        ahead: Future[T] | None = pool.submit(read, 0) if count > 0 else None
        for n in range(count):
            assert ahead is not None
            result = ahead.result()
            ahead = pool.submit(read, n + 1) if n + 1 < count else None
            yield result
            del result  # the caller's copy is gone too: the read after next may reuse its memory
