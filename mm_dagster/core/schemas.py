"""Enumerations shared with MLRun's model-monitoring schemas."""

from enum import Enum, IntEnum, StrEnum


class ResultKindApp(Enum):
    data_drift = 0
    concept_drift = 1
    model_performance = 2
    system_performance = 3
    mm_app_anomaly = 4


class ResultStatusApp(IntEnum):
    irrelevant = -1
    no_detection = 0
    potential_detection = 1
    detected = 2


class EventKind(StrEnum):
    """Alert event kinds (spec §6)."""

    data_drift_detected = "data-drift-detected"
    data_drift_suspected = "data-drift-suspected"
    concept_drift_detected = "concept-drift-detected"
    concept_drift_suspected = "concept-drift-suspected"
    model_performance_detected = "model-performance-detected"
    model_performance_suspected = "model-performance-suspected"
    system_performance_detected = "system-performance-detected"
    system_performance_suspected = "system-performance-suspected"
    mm_app_anomaly_detected = "mm-app-anomaly-detected"
    mm_app_anomaly_suspected = "mm-app-anomaly-suspected"
    mm_app_failed = "mm-app-failed"
    mm_notification_failed = "mm-notification-failed"  # a notification given up on (alerts only)


def event_kind_for(kind: ResultKindApp, status: ResultStatusApp) -> EventKind | None:
    """The alert event a result raises: `<kind>-detected` / `<kind>-suspected`, else None."""
    if status == ResultStatusApp.detected:
        suffix = "detected"
    elif status == ResultStatusApp.potential_detection:
        suffix = "suspected"
    else:
        return None
    return EventKind(f"{kind.name.replace('_', '-')}-{suffix}")


__all__ = ["EventKind", "ResultKindApp", "ResultStatusApp", "event_kind_for"]
