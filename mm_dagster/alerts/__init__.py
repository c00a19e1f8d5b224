"""Alerts (spec §6): MLRun's alert model, evaluated on stored results and delivered for real."""

from mm_dagster.alerts.channels import EmailChannel, LogChannel, SlackChannel, WebhookChannel
from mm_dagster.alerts.templates import app_failed, data_drift_detected, data_drift_suspected
from mm_dagster.alerts.yaml_loader import load_alerts_yaml
from mm_dagster.core.alerting.config import (
    CHECKS_ALERT,
    AlertConfig,
    Criteria,
    EntityFilter,
    ResetPolicy,
    Severity,
)

__all__ = [
    "CHECKS_ALERT",
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
