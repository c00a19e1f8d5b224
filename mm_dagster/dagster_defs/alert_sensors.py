"""Alert wiring: events and rules run in each app step (database only); delivery and the
once-per-(check, window) notifications run in sensors, so a dead channel never blocks a run and
the sensors' tick logs in the Dagster UI show what was sent."""

from collections.abc import Callable
from datetime import datetime

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)

from mm_dagster.alerts.manager import AlertManager
from mm_dagster.core.report import AppWindowReport
from mm_dagster.dagster_defs.assets import ReportHook
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring

DELIVERY_SENSOR = "mm_alert_delivery"
DELIVERY_INTERVAL_SECONDS = 30


def manager_for(
    monitoring: Monitoring, config: MonitoringConfig, clock: Callable[[], datetime]
) -> AlertManager:
    return AlertManager(
        monitoring.engine,
        config.alerts,
        check_channels=config.check_notifications,
        project=config.project,
        clock=clock,
    )


def deliver(manager: AlertManager, log: object) -> str:
    report = manager.deliver_due()
    for line in report.lines or []:
        log.info(line)  # type: ignore[attr-defined]
    return f"sent {report.sent}, retrying {report.retrying}, gave up {report.failed}"


def queue_failed_checks(context: RunStatusSensorContext, manager: AlertManager, on_warn: bool) -> int:
    """One notification per failed check and window of the finished run."""
    queued = 0
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if evaluation.passed or evaluation.asset_key.path[0] != "mm":
            continue
        if evaluation.severity != AssetCheckSeverity.ERROR and not on_warn:
            continue
        check = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        metadata["run_id"] = context.dagster_run.run_id
        if manager.enqueue_check_failure(check, evaluation.partition, evaluation.severity.value, metadata):
            queued += 1
    return queued


def build_alert_wiring(
    config: MonitoringConfig, clock: Callable[[], datetime]
) -> tuple[list[ReportHook], list[SensorDefinition]]:
    def record_alert_events(monitoring: Monitoring, report: AppWindowReport) -> None:
        manager_for(monitoring, config, clock).record_report(report)

    @sensor(
        name=DELIVERY_SENSOR,
        minimum_interval_seconds=DELIVERY_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Delivers queued alert notifications, retrying failed channels with backoff.",
    )
    def mm_alert_delivery(context: SensorEvaluationContext, mm: MonitoringResource) -> SkipReason:
        return SkipReason(deliver(manager_for(mm.monitoring(), config, clock), context.log))

    sensors: list[SensorDefinition] = [mm_alert_delivery]
    if config.check_notifications:
        for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
            sensors.append(_check_sensor(config, clock, status))
    return [record_alert_events], sensors


def _check_sensor(
    config: MonitoringConfig, clock: Callable[[], datetime], status: DagsterRunStatus
) -> SensorDefinition:
    @run_status_sensor(
        name=f"mm_check_notifications_on_{status.value.lower()}",
        run_status=status,
        monitored_jobs=None,
        default_status=DefaultSensorStatus.RUNNING,
        description="Notifies once per failed drift check and window.",
    )
    def check_notifications(context: RunStatusSensorContext, mm: MonitoringResource) -> None:
        manager = manager_for(mm.monitoring(), config, clock)
        queued = queue_failed_checks(context, manager, config.check_notifications_on_warn)
        delivered = deliver(manager, context.log)
        if queued:
            context.log.info(f"queued {queued} check notification(s); {delivered}")

    return check_notifications
