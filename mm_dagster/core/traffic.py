"""Silence as an incident (pure): which endpoints, and which windows, went quiet after steady
traffic. An endpoint is *steady before* a window when it had events in each of the `lookback`
windows just before it; such an endpoint with no events in the window itself is *silent* there.
"""

from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window


def check_lookback(lookback: object, what: str = "silent_endpoint_windows") -> int:
    """A count of windows (or requests): a whole number >= 1."""
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
        raise MonitoringError(f"{what} must be a whole number >= 1, got {lookback!r}")
    return lookback


def previous_windows(window: Window, lookback: int) -> list[Window]:
    """The `lookback` windows just before `window`, newest first."""
    step = window.end - window.start
    return [Window(window.start - step * i, window.end - step * i) for i in range(1, lookback + 1)]


def windows_touched(spans: Iterable[ArrivalSpan], base_period: int) -> set[Window]:
    """Windows that a stored span's events overlap (exact when each file lies in one window, as
    when the event store's slot is the window; an upper bound for coarser slots)."""
    step = timedelta(minutes=base_period)
    touched: set[Window] = set()
    for span in spans:
        w = Window.containing(span.first_event, base_period)
        while w.start <= span.last_event:
            touched.add(w)
            w = Window(w.end, w.end + step)
    return touched


def silent_endpoints(
    traffic: Mapping[str, Collection[Window]], window: Window, lookback: int, active: Collection[str]
) -> list[str]:
    """Endpoints steady before `window` (events in each of its `lookback` previous windows, per
    `traffic`: endpoint id -> windows with its events) that are not in `active` (those with events
    in `window`), sorted."""
    before = previous_windows(window, check_lookback(lookback))
    return sorted(
        endpoint_id
        for endpoint_id, windows in traffic.items()
        if endpoint_id not in active and all(w in windows for w in before)
    )


def went_silent(counts: Mapping[Window, int], window: Window, lookback: int) -> bool:
    """Whether a window without stored events follows `lookback` windows that all had some (from
    window totals: a superset of the windows where some endpoint went silent)."""
    if counts.get(window, 0):
        return False
    return all(counts.get(w, 0) > 0 for w in previous_windows(window, check_lookback(lookback)))
