"""Window keys agree with the Dagster partitions for every valid base_period (public Dagster API)."""

from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from dagster import PartitionKeyRange
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window, closed_before, validate_base_period
from mm_dagster.dagster_defs.partitions import window_partitions

from .conftest import BASE_PERIODS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BASE_PERIODS), instants)
def test_a_window_contains_its_instant_and_its_key_round_trips(bp: int, ts: datetime) -> None:
    w = Window.containing(ts, bp)
    assert w.start <= ts < w.end and w.end - w.start == timedelta(minutes=bp) and w.minutes == bp
    assert (w.start - EPOCH) % timedelta(minutes=bp) == timedelta(0)  # aligned to UTC multiples
    assert Window.from_key(w.key, bp) == w
    assert Window.containing(w.start, bp) == w and Window.containing(w.end - MICROSECOND, bp) == w
    assert Window.containing(w.end, bp).start == w.end
    # Any other timezone names the same instant, hence the same window.
    assert Window.containing(ts.astimezone(timezone(timedelta(hours=5, minutes=45))), bp) == w
    if bp > 1:
        with pytest.raises(MonitoringError, match="not aligned"):
            Window.from_key((w.start + timedelta(minutes=1)).strftime("%Y-%m-%d-%H:%M"), bp)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(BASE_PERIODS),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=0, max_value=10**9),
)
def test_window_keys_are_the_dagster_partition_keys(bp: int, first_day: date, offset: int) -> None:
    """`Window.containing(ts).key` is a partition of `window_partitions(bp, start)`, and the
    partition covers exactly [Window.start, Window.end): it is complete at Window.end, not a
    microsecond before, and the partition before it is the window before it."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    # At most ~100 partitions between start and ts, so listing them stays cheap for bp = 1.
    ts = start + timedelta(seconds=offset % (min(100 * bp, 3 * 1440) * 60))
    partitions = window_partitions(bp, start)
    w = Window.containing(ts, bp)

    keys = partitions.get_partition_keys(current_time=w.end)
    assert keys[-1] == w.key
    assert keys[0] == Window.containing(start, bp).key
    assert partitions.get_partition_keys_in_range(PartitionKeyRange(w.key, w.key)) == [w.key]
    before = partitions.get_partition_keys(current_time=w.end - MICROSECOND)
    assert w.key not in before  # the partition is not complete before the window ends
    if w.start > start:
        previous = Window(w.start - timedelta(minutes=bp), w.start)
        assert before[-1] == keys[-2] == previous.key
        assert Window.from_key(keys[-2], bp) == previous
    else:
        assert before == [] and keys == [w.key]
    # Every key is a window of this base_period, one after the other.
    windows = [Window.from_key(k, bp) for k in keys]
    assert all(a.end == b.start for a, b in pairwise(windows))


@pytest.mark.parametrize("bp", BASE_PERIODS)
def test_dagster_cron_matches_window_boundaries_over_a_day(bp: int) -> None:
    """Every window boundary of a whole day (two days for 1440) is a partition boundary."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = start + timedelta(days=2 if bp == 1440 else 1)
    keys = window_partitions(validate_base_period(bp), start).get_partition_keys(current_time=end)
    expected = [Window.containing(start + timedelta(minutes=bp * i), bp).key for i in range(len(keys))]
    assert keys == expected and len(keys) == (end - start) // timedelta(minutes=bp)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(BASE_PERIODS), instants, st.integers(0, 3 * 1440 * 60))
def test_closed_before_is_the_end_of_the_newest_closed_window(bp: int, now: datetime, late_s: int) -> None:
    lateness = timedelta(seconds=late_s)
    closed_end = closed_before(now, lateness, bp)
    newest = Window(closed_end - timedelta(minutes=bp), closed_end)
    assert newest.end + lateness <= now  # closed
    assert Window(newest.end, newest.end + timedelta(minutes=bp)).end + lateness > now  # the next is not
    assert Window.containing(newest.start, bp) == newest
