"""Read a window's events once per run: the window asset and every app step share the read."""

from collections import OrderedDict
from threading import Lock

import pandas as pd

from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring

_MAX_WINDOWS = 2
_cache: OrderedDict[tuple[str, str, Window], dict[str, pd.DataFrame]] = OrderedDict()
_lock = Lock()


def window_events(run_id: str, monitoring: Monitoring, window: Window) -> dict[str, pd.DataFrame]:
    key = (run_id, monitoring.settings.events_root, window)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    events = monitoring.read_window(window)
    with _lock:
        _cache[key] = events
        while len(_cache) > _MAX_WINDOWS:
            _cache.popitem(last=False)
    return events
