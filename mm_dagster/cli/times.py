"""Reading the times and durations options take: ISO times or relative ones (`6h`, `2d`)."""

import re
from argparse import ArgumentTypeError
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from mm_dagster.cli.errors import UsageError

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = MappingProxyType({"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"})


def parse_time(text: str, now: datetime, option: str) -> datetime:
    """`2026-11-20T12:00`, `2026-11-20 12:00+01:00`, `2026-11-20` (UTC unless an offset is
    given), or `6h` / `30m` / `2d` / `1w` before `now`."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: float(amount)})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a time: use an ISO time like 2026-11-20T12:00 (UTC unless an "
            "offset is given) or a span before now like 30m, 6h, 2d, 1w"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def time_range(since: str | None, until: str | None, now: datetime) -> tuple[datetime, datetime] | None:
    """The [since, until) range of `--since`/`--until`, or None when neither is given
    (`--until` alone means from the beginning)."""
    if since is None and until is None:
        return None
    start = parse_time(since, now, "--since") if since is not None else datetime(1970, 1, 1, tzinfo=UTC)
    end = parse_time(until, now, "--until") if until is not None else now
    if start >= end:
        raise UsageError(
            f"--since ({start:%Y-%m-%d %H:%M}) must be before --until ({end:%Y-%m-%d %H:%M}) (UTC)"
        )
    return start, end


def positive_hours(text: str) -> float:
    """An `--hours` value: a finite number above zero (an argparse `type`)."""
    try:
        hours = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not 0 < hours < float("inf"):
        raise ArgumentTypeError(f"must be a number of hours above 0, got {text}")
    return hours
