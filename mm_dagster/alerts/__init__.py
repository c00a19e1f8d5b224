"""Alerts (spec §6): MLRun's alert model, evaluated on stored results and delivered for real."""

from mm_dagster.alerts.config import (
    AlertConfig,
    Criteria,
    EmailChannel,
    EntityFilter,
    LogChannel,
    ResetPolicy,
    Severity,
    SlackChannel,
    WebhookChannel,
    load_alerts_yaml,
)
from mm_dagster.alerts.templates import app_failed, data_drift_detected, data_drift_suspected

__all__ = [
    "AlertConfig",
    "Criteria",
    "EmailChannel",
    "EntityFilter",
    "LogChannel",
    "ResetPolicy",
    "Severity",
    "SlackChannel",
    "WebhookChannel",
    "app_failed",
    "data_drift_detected",
    "data_drift_suspected",
    "load_alerts_yaml",
]
