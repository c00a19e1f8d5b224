"""A bounded, thread-safe, least-recently-used cache of fitted models, held by an app instance."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.reference_plan import PreparedReference, prepare_reference

if TYPE_CHECKING:
    from mm_dagster.applications.context import MonitoringApplicationContext

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FittedModelCache(Generic[K, V]):
    """At most `max_entries` models; the least recently used one is evicted first.

    `get_or_fit` fits outside the lock, so a slow fit for one key never blocks lookups or fits of
    other keys; two threads missing the same key at once may both fit it (the first stored wins,
    both return it).
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise MonitoringError(f"cache max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def get_or_fit(self, key: K, fit: Callable[[], V]) -> V:
        cached = self.get(key)
        if cached is not None:
            return cached
        fitted = fit()
        with self._lock:
            stored = self._entries.setdefault(key, fitted)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return stored


class PreparedReferences:
    """Each reference's stats turned once into arrays (`stats.reference_plan`), per reference
    (`MonitoringApplicationContext.reference_key`), for the apps that compare windows with them:
    the plan stored with the reference when there is one, else prepared from its stats."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._cache: FittedModelCache[tuple[str, int, str], PreparedReference] = FittedModelCache(max_entries)

    def of(self, ctx: "MonitoringApplicationContext") -> PreparedReference:
        return self._cache.get_or_fit(ctx.reference_key, lambda: _prepared(ctx))


def _prepared(ctx: "MonitoringApplicationContext") -> PreparedReference:
    plan = ctx.shared_reference_plan
    return prepare_reference(ctx.shared_feature_stats) if plan is None else plan
