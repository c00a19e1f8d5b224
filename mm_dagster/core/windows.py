"""Window arithmetic: windows are [start, end), aligned to UTC multiples of base_period."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import pandas as pd

from mm_dagster.core.errors import MonitoringError

PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def validate_base_period(base_period: int) -> int:
    """1..1440 minutes, dividing 1440, and expressible as one cron (divides 60 or is whole hours)."""
    if isinstance(base_period, bool) or not isinstance(base_period, int):
        raise MonitoringError(f"base_period must be an int number of minutes, got {base_period!r}")
    if not 1 <= base_period <= 1440 or 1440 % base_period:
        raise MonitoringError(f"base_period={base_period}: must be 1 to 1440 minutes and divide 1440")
    if 60 % base_period and base_period % 60:
        raise MonitoringError(
            f"base_period={base_period}: windows must be expressible as one cron schedule, "
            "so it must divide 60 or be a whole number of hours dividing 24"
        )
    return base_period


def cron_for(base_period: int) -> str:
    validate_base_period(base_period)
    if base_period < 60:
        return f"*/{base_period} * * * *" if base_period > 1 else "* * * * *"
    hours = base_period // 60
    if hours == 24:
        return "0 0 * * *"
    return f"0 */{hours} * * *" if hours > 1 else "0 * * * *"


def to_utc(ts: datetime | pd.Timestamp | str) -> datetime:
    """A tz-aware UTC datetime; naive input is taken as UTC."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    utc: datetime = t.to_pydatetime()
    return utc


@dataclass(frozen=True, order=True)
class Window:
    start: datetime
    end: datetime

    @cached_property
    def key(self) -> str:  # made once: a window's run names it for every endpoint
        return self.start.strftime(PARTITION_KEY_FORMAT)

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"

    @classmethod
    def containing(cls, ts: datetime | pd.Timestamp | str, base_period: int) -> "Window":
        t = to_utc(ts)
        minutes = int((t - _EPOCH).total_seconds() // 60)
        start_min = minutes - minutes % base_period
        start = _EPOCH + timedelta(minutes=start_min)
        return cls(start, start + timedelta(minutes=base_period))

    @classmethod
    def from_key(cls, key: str, base_period: int) -> "Window":
        try:
            start = datetime.strptime(key, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
        except ValueError as exc:
            raise MonitoringError(f"window key {key!r} is not of the form {PARTITION_KEY_FORMAT}") from exc
        window = cls.containing(start, base_period)
        if window.start != start:
            raise MonitoringError(f"window key {key!r} is not aligned to base_period={base_period}")
        return window


def closed_before(now: datetime, allowed_lateness: timedelta, base_period: int) -> datetime:
    """End of the newest closed window: every window with end <= this is closed."""
    return Window.containing(to_utc(now) - allowed_lateness, base_period).start


def windows_between(start: datetime, end: datetime, base_period: int) -> Iterator[Window]:
    """Aligned windows whose start lies in [start, end)."""
    w = Window.containing(start, base_period)
    if w.start < to_utc(start):
        w = Window(w.end, w.end + timedelta(minutes=base_period))
    step = timedelta(minutes=base_period)
    while w.start < to_utc(end):
        yield w
        w = Window(w.end, w.end + step)


def split_range(start: datetime, end: datetime, parts: int) -> list[Window]:
    """[start, end) cut into `parts` equal windows (a Dagster partition range of `parts` keys)."""
    start, end = to_utc(start), to_utc(end)
    if parts < 1 or end <= start:
        raise MonitoringError(f"cannot split [{start}, {end}) into {parts} windows")
    step = (end - start) / parts
    if step * parts != end - start or step % timedelta(minutes=1):
        raise MonitoringError(f"[{start}, {end}) does not split into {parts} whole-minute windows")
    return [Window(start + step * i, start + step * (i + 1)) for i in range(parts)]
