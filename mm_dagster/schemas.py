"""Public import path of the enumerations shared with MLRun (`mm_dagster.schemas`); the code lives
in `mm_dagster.core.schemas`."""

from mm_dagster.core.schemas import (
    EventKind,
    ResultKindApp,
    ResultStatusApp,
    event_kind_for,
)
from mm_dagster.core.thresholds import Thresholds


def status_from_thresholds(value: float, potential: float, detected: float) -> ResultStatusApp:
    """`detected` at or above `detected`, `potential_detection` at or above `potential`."""
    return Thresholds(potential, detected).status(value)


__all__ = [
    "EventKind",
    "ResultKindApp",
    "ResultStatusApp",
    "Thresholds",
    "event_kind_for",
    "status_from_thresholds",
]
