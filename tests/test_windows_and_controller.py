from datetime import UTC, datetime, timedelta

import pytest

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.controller import ControllerCursor, plan_requests
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window, closed_before, cron_for, validate_base_period, windows_between

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATE = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def span(first: float, last: float, max_id: int) -> ArrivalSpan:
    return ArrivalSpan(at(first), at(last), 10, max_id)


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


def plan(
    cursor: ControllerCursor,
    now: datetime,
    new: list[ArrivalSpan],
    late: list[ArrivalSpan] = (),
    max_id: int = 0,
    cap: int = 144,
):  # type: ignore[no-untyped-def]
    return plan_requests(
        cursor,
        now=now,
        base_period=10,
        allowed_lateness=LATE,
        max_catchup_windows=cap,
        new_spans=new,
        late_spans=late,
        max_arrival_id=max_id,
    )


def test_first_tick_requests_closed_windows_with_events() -> None:
    p = plan(ControllerCursor(), at(31), [span(1, 9, 1), span(22, 25, 2), span(31, 31, 3)], max_id=3)
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00", "mm-2026-11-20-12:20"]
    assert p.cursor == ControllerCursor(at(30), 3)


def test_nothing_closed_yet() -> None:
    p = plan(ControllerCursor(at(30), 3), at(40.5), [span(32, 39, 4)], max_id=4)
    assert p.requests == [] and p.cursor == ControllerCursor(at(30), 4)


def test_no_duplicates_across_ticks() -> None:
    first = plan(ControllerCursor(), at(31), [span(1, 9, 1)], max_id=1)
    second = plan(first.cursor, at(35), [], max_id=1)
    assert second.requests == [] and second.cursor == first.cursor


def test_late_events_re_request_a_processed_window_with_a_revision() -> None:
    cursor = ControllerCursor(at(30), 3)
    p = plan(cursor, at(32), [], late=[span(5, 6, 7)], max_id=7)
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00-rev7"]
    again = plan(p.cursor, at(33), [], late=[], max_id=7)
    assert again.requests == []


def test_downtime_catch_up_is_capped() -> None:
    cursor = ControllerCursor(at(0), 1)
    spans = [span(m + 1, m + 2, 2) for m in range(0, 600, 10)]
    p = plan(cursor, at(601), spans, max_id=2, cap=6)
    assert len(p.requests) == 6
    assert p.requests[0].window.start == at(540) and p.requests[-1].window.end == at(600)
    assert p.skipped[0].start == at(0) and p.skipped[-1].end == at(540)


def test_cursor_roundtrip() -> None:
    c = ControllerCursor(at(30), 9)
    assert ControllerCursor.from_json(c.to_json()) == c
    assert ControllerCursor.from_json(None) == ControllerCursor()


def test_changing_base_period_continues_from_the_cursor() -> None:
    """No disable/enable dance: the cursor is a time, so a new base_period carries on from it."""
    cursor = plan(ControllerCursor(), at(31), [span(1, 29, 1)], max_id=1).cursor
    assert cursor.last_end == at(30)
    p = plan_requests(
        cursor,
        now=at(46),
        base_period=5,
        allowed_lateness=LATE,
        max_catchup_windows=144,
        new_spans=[span(31, 44, 2)],
        late_spans=[],
        max_arrival_id=2,
    )
    assert [r.window.key for r in p.requests] == ["2026-11-20-12:30", "2026-11-20-12:35", "2026-11-20-12:40"]
    assert p.cursor.last_end == at(45)


def test_late_windows_past_the_cap_are_reported_as_skipped() -> None:
    """Found by tests/test_properties_controller.py: they used to be dropped silently."""
    cursor = ControllerCursor(at(60), 3)
    p = plan(cursor, at(62), [], late=[span(1, 35, 7)], max_id=7, cap=2)
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:20-rev7", "mm-2026-11-20-12:30-rev7"]
    assert [w.key for w in p.skipped] == ["2026-11-20-12:00", "2026-11-20-12:10"]


def test_a_coarser_base_period_requests_the_window_around_the_cursor() -> None:
    """Found by tests/test_properties_controller.py: 10 -> 60 minutes with the cursor at 12:30 used
    to start at 13:00, so events in [12:30, 13:00) were never analysed."""
    cursor = ControllerCursor(at(30), 2)
    p = plan_requests(
        cursor,
        now=at(61),
        base_period=60,
        allowed_lateness=LATE,
        max_catchup_windows=144,
        new_spans=[span(35, 40, 2)],
        late_spans=[],
        max_arrival_id=2,
    )
    # The 60-minute window 12:00 has the same key as the 10-minute window 12:00 requested before:
    # a revision keeps its run_key unique.
    assert [r.run_key for r in p.requests] == ["mm-2026-11-20-12:00-rev2"]
    assert p.requests[0].window == Window(at(0), at(60)) and p.cursor.last_end == at(60)
