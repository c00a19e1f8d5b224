"""Time-range arithmetic on request parameters: what falls outside the years 1 to 9999 (Python's
datetime) is the request's error (400), not the server's."""

from datetime import UTC, datetime, timedelta

from fastapi import HTTPException


def to_utc(value: datetime, what: str) -> datetime:
    """`value` in UTC (naive: taken as UTC)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        detail = f"{what} {value.isoformat()} is out of range in UTC"
        raise HTTPException(status_code=400, detail=detail) from None


def span_before(stop: datetime, span: timedelta, what: str) -> datetime:
    """The time `span` before `stop`."""
    try:
        return stop - span
    except OverflowError:
        raise HTTPException(
            status_code=400, detail=f"{what}: {span} before {stop.isoformat()} is before the year 1"
        ) from None
