"""Silence rules (pure): which endpoints went silent, and which empty windows the controller
requests so that apps see them."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.controller import ControllerCursor, plan_requests, window_counts
from mm_dagster.core.traffic import previous_windows, silent_endpoints, went_silent, windows_touched
from mm_dagster.core.windows import Window

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=10)


def w(i: int) -> Window:
    return Window(T0 + STEP * i, T0 + STEP * (i + 1))


def plan(cursor: ControllerCursor, now_window: int, counts: dict[Window, int], silence: int | None = 3):  # type: ignore[no-untyped-def]
    return plan_requests(
        cursor,
        now=w(now_window).start + timedelta(minutes=1),
        base_period=10,
        allowed_lateness=timedelta(minutes=1),
        horizon=timedelta(days=1),
        max_requests=144,
        counts=counts,
        silence_windows=silence,
    )


def test_previous_windows_newest_first() -> None:
    assert previous_windows(w(5), 3) == [w(4), w(3), w(2)]


def test_silent_endpoints_need_events_in_each_previous_window() -> None:
    traffic = {"a": {w(1), w(2), w(3)}, "b": {w(1), w(3)}, "c": {w(1), w(2), w(3), w(4)}}
    assert silent_endpoints(traffic, w(4), 3, active={"c"}) == ["a"]
    assert silent_endpoints(traffic, w(4), 1, active={"c"}) == ["a", "b"]
    assert silent_endpoints(traffic, w(4), 3, active={"a", "c"}) == []


def test_windows_touched_by_spans() -> None:
    spans = [
        ArrivalSpan(w(1).start, w(1).start + timedelta(minutes=3), 5),
        ArrivalSpan(w(2).end, w(3).end - timedelta(seconds=1), 2),
    ]
    assert windows_touched(spans, 10) == {w(1), w(3)}


def test_an_empty_window_after_steady_ones_is_requested_once() -> None:
    counts = {w(0): 5, w(1): 5, w(2): 5}
    first = plan(ControllerCursor(), 4, counts)  # w(3) closed, no events
    assert [r.window for r in first.requests] == [w(0), w(1), w(2), w(3)]
    assert went_silent(counts, w(3), 3) and not went_silent(counts, w(3), 4)
    again = plan(first.cursor, 5, counts)  # w(4) closed: its previous windows include silent w(3)
    assert again.requests == []
    late = plan(again.cursor, 5, {**counts, w(3): 2})  # late events for the silent window
    # ... re-analyse it, and make w(4) the first silent window after steady traffic.
    assert [(r.window, r.revision) for r in late.requests] == [(w(3), 1), (w(4), 0)]


def test_without_silence_windows_nothing_changes() -> None:
    counts = {w(0): 5, w(1): 5, w(2): 5}
    assert [r.window for r in plan(ControllerCursor(), 4, counts, silence=None).requests] == [
        w(0),
        w(1),
        w(2),
    ]


def test_counts_before_the_look_back_decide_its_first_window() -> None:
    horizon_start = w(4).start - timedelta(days=1)
    before = Window(horizon_start - STEP, horizon_start)
    counts = {Window(before.start - STEP * i, before.end - STEP * i): 3 for i in range(3)}
    p = plan(ControllerCursor(), 4, counts)
    assert Window(horizon_start, horizon_start + STEP) in [r.window for r in p.requests]


def test_an_earlier_versions_cursor_does_not_request_old_silent_windows() -> None:
    counts = {w(0): 5, w(1): 5, w(2): 5, w(4): 5, w(5): 5, w(6): 5}
    old = ControllerCursor(closed_end=w(3).end, base_period=None)  # w(3) was before it
    p = plan(old, 8, counts)
    assert w(3) not in [r.window for r in p.requests]
    assert w(7) in [r.window for r in p.requests]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=16), st.integers(1, 4))
def test_ticks_request_every_silent_window_exactly_once(events: list[int], lookback: int) -> None:
    """Windows close one per tick; each window with events, and each empty one after `lookback`
    windows with events, is requested exactly once, whatever the traffic."""
    counts = {w(i): n for i, n in enumerate(events) if n}
    cursor = ControllerCursor()
    requested: list[Window] = []
    for i in range(len(events)):
        p = plan(cursor, i + 1, counts, silence=lookback)
        requested += [r.window for r in p.requests]
        cursor = p.cursor
    expected = [
        w(i)
        for i, n in enumerate(events)
        if n or (i >= lookback and all(events[i - j] for j in range(1, lookback + 1)))
    ]
    assert requested == expected


def test_window_counts_feed_went_silent() -> None:
    spans = [ArrivalSpan(w(i).start, w(i).start + timedelta(minutes=1), 1) for i in range(3)]
    assert went_silent(window_counts(spans, 10), w(3), 3)
