"""Alert wiring. Each app step stores its window's alert events, evaluates the rules and queues
the failed-check notification (it already holds the verdict); a sensor delivers the queue, so a
dead channel never blocks a run and the sensor's tick log shows what was sent."""

from dagster import (
    AssetCheckSeverity,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from mm_dagster.alerts.service import AlertService
from mm_dagster.core.clock import Clock
from mm_dagster.dagster_defs.assets import WindowHook, WindowOutcome
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage.alert_store import AlertStore

DELIVERY_INTERVAL_SECONDS = 30


def alert_service_for(monitoring: Monitoring, config: MonitoringConfig, clock: Clock) -> AlertService:
    return AlertService(
        AlertStore(monitoring.engine),
        config.alerts,
        check_channels=config.check_notifications,
        project=config.project,
        clock=clock,
        resend_when_healthy=config.resend_when_healthy,
    )


def build_alert_wiring(config: MonitoringConfig, clock: Clock) -> tuple[WindowHook, SensorDefinition]:
    names = config.names

    def on_window(monitoring: Monitoring, outcome: WindowOutcome) -> None:
        alerts = alert_service_for(monitoring, config, clock)
        alerts.record_report(outcome.report)
        for verdict in outcome.verdicts:
            notify = verdict.severity == AssetCheckSeverity.ERROR or config.check_notifications_on_warn
            if not verdict.passed and notify:
                metadata = {**verdict.plain_metadata(), "run_id": outcome.run_id}
                alerts.enqueue_check_failure(
                    verdict.check, verdict.window_key, verdict.severity.value, metadata
                )

    @sensor(
        name=names.delivery_sensor,
        minimum_interval_seconds=DELIVERY_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={names.resource_key},
        description=(
            "Delivers the alert notifications the monitoring runs queue, retrying failed channels "
            "with backoff; each tick logs what it sent, retried or gave up on. Stop it to hold "
            "notifications (they stay queued)."
        ),
    )
    def mm_alert_delivery(context: SensorEvaluationContext) -> SkipReason:
        resource = getattr(context.resources, names.resource_key)
        assert isinstance(resource, MonitoringResource)
        report = alert_service_for(resource.monitoring, config, clock).deliver_due()
        for line in report.lines:
            context.log.info(line)
        summary = f"sent {report.sent}, retrying {report.retrying}, gave up {report.failed}"
        context.log.info(f"notifications: {summary}")
        return SkipReason(summary)

    return on_window, mm_alert_delivery
