"""The alert services over one store, built together for the call sites that use them all."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from mm_dagster.alerts.delivery import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    MAX_ATTEMPTS,
    DeliveryReport,
    NotificationDelivery,
)
from mm_dagster.alerts.evaluation import AlertEvaluation
from mm_dagster.alerts.inspection import AlertInspection
from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import AlertConfig, alerts_by_name
from mm_dagster.core.alerting.messages import GROUP_LIMIT
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.report import AppWindowReport
from mm_dagster.storage.alert_store import AlertStore


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        alerts: Sequence[AlertConfig] = (),
        *,
        check_channels: Sequence[Channel] = (),
        project: str = "default",
        clock: Clock = utcnow,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base: timedelta = BACKOFF_BASE,
        backoff_max: timedelta = BACKOFF_MAX,
        group_limit: int = GROUP_LIMIT,
        resend_when_healthy: bool = False,
    ) -> None:
        configured = alerts_by_name(alerts)
        self.store = store
        self.evaluation = AlertEvaluation(
            store,
            configured,
            check_channels=check_channels,
            project=project,
            clock=clock,
            group_limit=group_limit,
        )
        self.delivery = NotificationDelivery(
            store,
            configured,
            check_channels=check_channels,
            clock=clock,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            resend_when_healthy=resend_when_healthy,
        )
        self.inspection = AlertInspection(store, configured, clock)

    def record_report(self, report: AppWindowReport) -> int:
        return self.evaluation.record_report(report)

    def enqueue_check_failure(
        self, check: str, partition: str | None, severity: str, metadata: dict[str, Any]
    ) -> bool:
        return self.evaluation.enqueue_check_failure(check, partition, severity, metadata)

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Send what is due; notifications given up on raise `mm-notification-failed` events,
        evaluated at once so alerts routed on them queue their notifications (sent next time)."""
        report = self.delivery.deliver_due(limit)
        if report.failure_events:
            queued = self.evaluation.evaluate()
            if queued:
                report.lines.append(f"queued {len(queued)} notification(s) about failed notifications")
        return report

    def resend(self, alert: str | None = None, notification_id: int | None = None) -> int:
        return self.delivery.resend(alert, notification_id)
