"""An app's own metrics of past windows, as apps read them (`monitoring_context.metric_history`).

One loader per (app, window) in a run, shared by the app's contexts on every endpoint: the first
endpoint that asks for a past window loads that window's metrics of the app for all endpoints in
one query; the others read them from memory.
"""

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window
from mm_dagster.storage.results_store import ResultsStore

EMPTY: Mapping[str, float] = MappingProxyType({})


class MetricHistory:
    """The stored metrics of one app, per endpoint, of windows before `window` (read-only)."""

    def __init__(self, results: ResultsStore, app: str, window: Window) -> None:
        self._results = results
        self._app = app
        self._window = window
        self._loaded: dict[datetime, dict[str, Mapping[str, float]]] = {}
        self._lock = threading.Lock()  # a timed-out app call may still be reading in its thread

    def metrics(self, endpoint_id: str, ago: timedelta) -> Mapping[str, float]:
        """The app's metrics of `endpoint_id` for the window that started `ago` before this one
        (empty when none are stored: no traffic then, or the app did not run)."""
        if ago <= timedelta(0):
            raise MonitoringError(
                f"app {self._app!r}, window {self._window}: metric_history needs a positive "
                f"timedelta (how long before this window), got {ago!r}"
            )
        start = self._window.start - ago
        with self._lock:
            if start not in self._loaded:
                by_endpoint: dict[str, dict[str, float]] = {}
                for m in self._results.metrics(app=self._app, start=start, end=start + timedelta(minutes=1)):
                    if m.window_start == start:
                        by_endpoint.setdefault(m.endpoint_id, {})[m.name] = m.value
                self._loaded[start] = {e: MappingProxyType(v) for e, v in by_endpoint.items()}
            return self._loaded[start].get(endpoint_id, EMPTY)
