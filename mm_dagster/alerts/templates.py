"""Built-in alert templates matching MLRun's `DataDriftDetected` / `DataDriftSuspected`, plus an
app-failure template: `data_drift_detected([SlackChannel(url_env="SLACK_URL")])`."""

from collections.abc import Callable, Sequence
from typing import Any

from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import AlertConfig, Severity
from mm_dagster.core.schemas import EventKind


def _template(kind: EventKind, summary: str, severity: Severity) -> Callable[..., AlertConfig]:
    def make(notifications: Sequence[Channel], name: str = kind.value, **overrides: Any) -> AlertConfig:
        fields = {"summary": summary, "severity": severity, "trigger": [kind], **overrides}
        return AlertConfig(name=name, notifications=notifications, **fields)

    make.__doc__ = f"An alert on `{kind.value}` events (override any field by keyword)."
    return make


data_drift_detected = _template(
    EventKind.data_drift_detected, "{{project}}: data drift detected on {{entity}}", Severity.high
)
data_drift_suspected = _template(
    EventKind.data_drift_suspected, "{{project}}: data drift suspected on {{entity}}", Severity.medium
)
app_failed = _template(
    EventKind.mm_app_failed, "{{project}}: monitoring app failed on {{entity}}", Severity.medium
)
