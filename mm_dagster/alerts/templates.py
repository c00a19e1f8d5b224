"""Built-in alert templates matching MLRun's `DataDriftDetected` / `DataDriftSuspected`."""

from collections.abc import Sequence
from typing import Any

from mm_dagster.alerts.config import AlertConfig, Channel, Severity
from mm_dagster.schemas import EventKind


def data_drift_detected(
    notifications: Sequence[Channel], name: str = "data-drift-detected", **overrides: Any
) -> AlertConfig:
    return AlertConfig(
        **{
            "name": name,
            "summary": "{{project}}: data drift detected on {{entity}}",
            "severity": Severity.high,
            "trigger": [EventKind.data_drift_detected],
            "notifications": notifications,
            **overrides,
        }
    )


def data_drift_suspected(
    notifications: Sequence[Channel], name: str = "data-drift-suspected", **overrides: Any
) -> AlertConfig:
    return AlertConfig(
        **{
            "name": name,
            "summary": "{{project}}: data drift suspected on {{entity}}",
            "severity": Severity.medium,
            "trigger": [EventKind.data_drift_suspected],
            "notifications": notifications,
            **overrides,
        }
    )


def app_failed(
    notifications: Sequence[Channel], name: str = "mm-app-failed", **overrides: Any
) -> AlertConfig:
    return AlertConfig(
        **{
            "name": name,
            "summary": "{{project}}: monitoring app failed on {{entity}}",
            "severity": Severity.medium,
            "trigger": [EventKind.mm_app_failed],
            "notifications": notifications,
            **overrides,
        }
    )
