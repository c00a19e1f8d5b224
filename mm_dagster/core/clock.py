"""The processing clock. Code that needs "now" takes a `Clock`, so tests inject a fixed one."""

from collections.abc import Callable
from datetime import UTC, datetime

from mm_dagster.core.errors import MonitoringError

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def fixed_clock(at: datetime) -> Clock:
    """A clock that always reads `at` (tz-aware)."""
    if at.tzinfo is None:
        raise MonitoringError(f"fixed_clock needs a tz-aware datetime, got {at!r}")
    return lambda: at
