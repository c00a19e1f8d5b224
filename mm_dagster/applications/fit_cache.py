"""A bounded, thread-safe least-recently-used map an app keeps what it fitted once in (e.g. one
model per endpoint and reference version), so nothing is shared between app instances or held at
module level."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from mm_dagster.core.errors import MonitoringError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `max_entries` values; the least recently used goes first. `get_or_create` runs
    `create` outside the lock (a slow fit never blocks other keys); when two threads create the
    same key at once, the first value stored wins and both get it."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise MonitoringError(f"cache size must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = create()
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            self._values[key] = value
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)
            return value
