from datetime import UTC, datetime, timedelta

import pytest

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.controller import ControllerCursor, Seen, plan_requests, window_counts
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window, closed_before, cron_for, validate_base_period, windows_between

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATE = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def span(first: float, last: float, events: int = 10) -> ArrivalSpan:
    return ArrivalSpan(at(first), at(last), events)


@pytest.mark.parametrize("bp", [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440])
def test_valid_base_periods_have_aligned_crons(bp: int) -> None:
    assert validate_base_period(bp) == bp
    assert cron_for(bp)


@pytest.mark.parametrize("bp", [0, 7, 1441, 2880, 90, 8, True, 10.0])
def test_invalid_base_periods(bp: object) -> None:
    with pytest.raises(MonitoringError, match="base_period"):
        validate_base_period(bp)  # type: ignore[arg-type]


def test_windows_align_to_utc_multiples() -> None:
    w = Window.containing("2026-11-20T12:07:30+02:00", 10)
    assert w.start == datetime(2026, 11, 20, 10, 0, tzinfo=UTC) and w.minutes == 10
    assert w.key == "2026-11-20-10:00"
    assert Window.from_key(w.key, 10) == w
    with pytest.raises(MonitoringError, match="not aligned"):
        Window.from_key("2026-11-20-10:05", 10)
    assert Window.containing("2026-11-20T23:59", 1440).start == datetime(2026, 11, 20, tzinfo=UTC)
    assert [x.key for x in windows_between(at(-15), at(20), 10)] == [
        "2026-11-20-11:50",
        "2026-11-20-12:00",
        "2026-11-20-12:10",
    ]


def test_window_closes_after_allowed_lateness_without_more_traffic() -> None:
    assert closed_before(at(10.5), LATE, 10) == at(0)
    assert closed_before(at(11), LATE, 10) == at(10)


def counts(*spans: ArrivalSpan, bp: int = 10) -> dict[Window, int]:
    return window_counts(spans, bp)


def plan(
    cursor: ControllerCursor,
    now: datetime,
    stored: dict[Window, int],
    cap: int = 144,
    bp: int = 10,
    horizon: timedelta = timedelta(days=1),
):  # type: ignore[no-untyped-def]
    return plan_requests(
        cursor,
        now=now,
        base_period=bp,
        allowed_lateness=LATE,
        horizon=horizon,
        max_requests=cap,
        counts=stored,
    )


def test_first_tick_requests_closed_windows_with_events() -> None:
    p = plan(ControllerCursor(), at(31), counts(span(1, 9), span(22, 25), span(31, 31)))
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00", "mm-2026-11-20-12:20"]
    assert p.cursor.closed_end == at(30) and p.cursor.base_period == 10
    assert p.cursor.seen == {"2026-11-20-12:00": Seen(10, 0), "2026-11-20-12:20": Seen(10, 0)}


def test_nothing_closed_yet() -> None:
    first = plan(ControllerCursor(), at(31), counts(span(1, 9)))
    p = plan(first.cursor, at(40.5), counts(span(1, 9), span(32, 39)))
    assert p.requests == [] and p.cursor == first.cursor


def test_no_duplicates_across_ticks() -> None:
    first = plan(ControllerCursor(), at(31), counts(span(1, 9)))
    second = plan(first.cursor, at(35), counts(span(1, 9)))
    assert second.requests == [] and second.cursor == first.cursor


def test_late_events_re_request_a_processed_window_with_a_revision_number() -> None:
    first = plan(ControllerCursor(), at(31), counts(span(5, 6)))
    p = plan(first.cursor, at(32), counts(span(5, 6), span(5, 7)))
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00-rev1"]
    assert [r.revision for r in p.requests] == [1]
    assert plan(p.cursor, at(33), counts(span(5, 6), span(5, 7))).requests == []
    third = plan(p.cursor, at(34), counts(span(5, 6), span(5, 7), span(8, 8)))
    assert [r.run_key for r in third.requests] == ["mm-2026-11-20-12:00-rev2"]


def test_arrivals_committed_out_of_order_are_all_seen() -> None:
    """No arrival ids: a transaction that commits after a later one still raises its window's
    count, and the window is re-requested (the PostgreSQL commit-order case)."""
    first = plan(ControllerCursor(), at(31), counts(span(1, 2), span(21, 22)))
    # Both batches' rows become visible only now, whatever ids they got.
    p = plan(first.cursor, at(45), counts(span(1, 2), span(3, 4), span(21, 22), span(23, 24)))
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00-rev1", "mm-2026-11-20-12:20-rev1"]


def test_more_due_windows_than_the_cap_are_spread_over_ticks() -> None:
    stored = counts(*(span(m + 1, m + 2) for m in range(0, 600, 10)))
    p = plan(ControllerCursor(), at(601), stored, cap=6)
    assert [r.window.start for r in p.requests] == [at(m) for m in range(540, 600, 10)]  # newest first
    assert p.due[0].start == at(0) and p.due[-1].end == at(540) and len(p.due) == 54
    requested = {r.window for r in p.requests}
    cursor = p.cursor
    for tick in range(1, 10):
        nxt = plan(cursor, at(601 + tick), stored, cap=6)
        requested |= {r.window for r in nxt.requests}
        cursor = nxt.cursor
    assert requested == set(stored) and nxt.due == []


def test_windows_older_than_the_horizon_are_left_to_a_backfill() -> None:
    p = plan(ControllerCursor(), at(601), counts(span(1, 2), span(591, 592)), horizon=timedelta(hours=1))
    assert [r.window.start for r in p.requests] == [at(590)]
    assert p.horizon == at(540)


def test_cursor_roundtrip_and_the_old_format() -> None:
    c = plan(ControllerCursor(), at(31), counts(span(1, 9))).cursor
    assert ControllerCursor.from_json(c.to_json()) == c
    assert ControllerCursor.from_json(None) == ControllerCursor()
    old = ControllerCursor.from_json('{"last_end": "2026-11-20T12:30:00+00:00", "arrival_id": 3}')
    assert old.closed_end == at(30) and old.base_period is None and dict(old.seen) == {}
    # Windows the old controller requested (before its cursor) are not requested again.
    p = plan(old, at(41), counts(span(1, 9), span(31, 32)))
    assert [r.window.start for r in p.requests] == [at(30)]


def test_changing_base_period_analyses_the_look_back_again() -> None:
    """No disable/enable dance: after a code change to base_period the next tick carries on, and
    the recent windows are analysed again with the new length (keys seen before get a revision)."""
    stored = [span(1, 29), span(31, 44)]
    cursor = plan(ControllerCursor(), at(31), counts(*stored[:1])).cursor
    assert cursor.closed_end == at(30)
    p = plan(cursor, at(46), counts(*stored, bp=5), bp=5)
    assert [r.run_key for r in p.requests] == [
        # The 10-minute windows 12:00, 12:10 and 12:20 were requested with these keys.
        f"mm-2026-11-20-12:{m:02d}-rev1" if m in (0, 10, 20) else f"mm-2026-11-20-12:{m:02d}"
        for m in range(0, 45, 5)
    ]
    assert p.cursor.closed_end == at(45) and p.cursor.base_period == 5


def test_a_coarser_base_period_requests_the_window_around_the_cursor() -> None:
    """10 -> 60 minutes with the cursor at 12:30 must not lose the events in [12:30, 13:00)."""
    first = plan(ControllerCursor(), at(31), counts(span(1, 2)))
    p = plan(first.cursor, at(61), counts(span(1, 2), span(35, 40), bp=60), bp=60)
    # The 60-minute window 12:00 has the same key as the 10-minute window 12:00 requested before:
    # a revision keeps its run_key unique.
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00-rev1"]
    assert p.requests[0].window == Window(at(0), at(60)) and p.cursor.closed_end == at(60)
