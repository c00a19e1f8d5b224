"""The controller: a sensor that requests one run per closed window (spec §5)."""

from collections.abc import Callable
from datetime import datetime

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from mm_dagster.core.controller import ControllerCursor, new_window_range, plan_requests
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.storage.arrival_log import arrival_spans, max_arrival_id

CONTROLLER_SENSOR = "mm_controller"


def build_controller_sensor(
    job: UnresolvedAssetJobDefinition, config: MonitoringConfig, clock: Callable[[], datetime]
) -> SensorDefinition:
    @sensor(
        name=CONTROLLER_SENSOR,
        job=job,
        minimum_interval_seconds=config.sensor_interval_seconds,
        default_status=(
            DefaultSensorStatus.RUNNING if config.sensor_running_by_default else DefaultSensorStatus.STOPPED
        ),
        description=f"Requests one monitoring run per closed {config.base_period}-minute window.",
    )
    def mm_controller(context: SensorEvaluationContext, mm: MonitoringResource) -> SensorResult | SkipReason:
        monitoring = mm.monitoring()
        engine = monitoring.engine
        cursor = ControllerCursor.from_json(context.cursor)
        now = clock()
        start, closed_end = new_window_range(
            cursor, now, config.base_period, config.allowed_lateness, config.max_catchup_windows
        )
        new_spans = arrival_spans(
            engine,
            events_from=start,
            events_before=closed_end,
            slot_minutes=monitoring.events.partition_minutes,
        )

        late_spans = (
            arrival_spans(engine, after_id=cursor.arrival_id, events_before=cursor.last_end)
            if cursor.last_end is not None
            else []
        )
        plan = plan_requests(
            cursor,
            now=now,
            base_period=config.base_period,
            allowed_lateness=config.allowed_lateness,
            max_catchup_windows=config.max_catchup_windows,
            new_spans=new_spans,
            late_spans=late_spans,
            max_arrival_id=max_arrival_id(engine),
        )
        if plan.skipped:
            context.log.warning(
                f"controller was down: {len(plan.skipped)} windows from {plan.skipped[0].key} to "
                f"{plan.skipped[-1].key} are past max_catchup_windows={config.max_catchup_windows} "
                "and were not requested; backfill them from the UI if needed"
            )
        requests = [
            RunRequest(
                run_key=r.run_key,
                partition_key=r.window.key,
                tags={"mm/window": r.window.key, "mm/revision": str(r.revision)},
            )
            for r in plan.requests
            if r.window.start >= config.partitions_start  # type: ignore[operator]
        ]
        return SensorResult(run_requests=requests, cursor=plan.cursor.to_json())

    return mm_controller
