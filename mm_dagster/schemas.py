"""Public import path of the enumerations shared with MLRun (`mm_dagster.schemas`); the code lives
in `mm_dagster.core.schemas`."""

from mm_dagster.core.schemas import (
    EventKind,
    ResultKindApp,
    ResultStatusApp,
    event_kind_for,
    status_from_thresholds,
)

__all__ = ["EventKind", "ResultKindApp", "ResultStatusApp", "event_kind_for", "status_from_thresholds"]
