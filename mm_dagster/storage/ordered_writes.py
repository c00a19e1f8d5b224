"""Writes done in order on a thread of their own while the caller goes on.

A window analysed in parts stores each part's outputs (`ResultsStore.replace_window`: ~1 s of
SQLite work for 2,500 endpoints, most of it in the driver, which releases the GIL) while the next
part is read and analysed. The writes run one at a time, in the order given; the first one that
fails stops the ones after it, and its error is raised to the caller at its next `submit`, at
`raise_failure`, or when the block ends, which waits for every write: nothing is left half-done
or lost in silence.
"""

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

logger = logging.getLogger(__name__)
Write = Callable[[Callable[[], None]], None]  # hands a write to whoever stores it (`OrderedWrites.submit`)


class OrderedWrites:
    """`submit` a write; `with OrderedWrites() as writes:` waits for all of them at the end."""

    def __init__(self, name: str = "mm-writes") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._submitted: list[Future[None]] = []
        self._failure: BaseException | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Run `write` after the writes submitted before it; raises the failure of an earlier one."""
        self.raise_failure()
        self._submitted.append(self._pool.submit(self._unless_failed, write))

    def raise_failure(self) -> None:
        """Raise the error of a write that failed, if one did (the writes after it never ran)."""
        if self._failure is not None:
            raise self._failure

    def wait(self) -> None:
        """Wait for every write submitted; raise the first failure."""
        for future in self._submitted:
            future.result()

    def _unless_failed(self, write: Callable[[], None]) -> None:
        if self._failure is not None:
            raise RuntimeError("not written: an earlier write failed") from self._failure
        try:
            write()
        except BaseException as exc:
            self._failure = exc
            raise

    def __enter__(self) -> "OrderedWrites":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.wait()
            else:  # the caller failed: let what it submitted finish, and raise its own error
                failures = [f.exception() for f in self._submitted]
                if self._failure is not None and self._failure is not error:
                    failed = sum(f is not None for f in failures)
                    logger.error("%d write(s) not done beside the error raised: %r", failed, self._failure)
        finally:
            self._pool.shutdown(wait=True)
