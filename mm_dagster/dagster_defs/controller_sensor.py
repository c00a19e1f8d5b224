"""The controller: a sensor that requests one run per closed window (spec §5). The decisions are
`core.controller.plan_requests`; this module only reads the arrival log and talks to Dagster."""

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from mm_dagster.core.clock import Clock
from mm_dagster.core.controller import ControllerCursor, new_window_range, plan_requests
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.resources import MonitoringResource


def build_controller_sensor(config: MonitoringConfig, clock: Clock) -> SensorDefinition:
    names = config.names

    @sensor(
        name=names.controller_sensor,
        job_name=names.job,
        minimum_interval_seconds=config.sensor_interval_seconds,
        default_status=(
            DefaultSensorStatus.RUNNING if config.sensor_running_by_default else DefaultSensorStatus.STOPPED
        ),
        required_resource_keys={names.resource_key},
        description=f"Requests one monitoring run per closed {config.base_period}-minute window.",
    )
    def mm_controller(context: SensorEvaluationContext) -> SensorResult:
        resource = getattr(context.resources, names.resource_key)
        assert isinstance(resource, MonitoringResource)
        monitoring = resource.monitoring
        arrivals = monitoring.arrivals
        cursor = ControllerCursor.from_json(context.cursor)
        now = clock()
        start, closed_end = new_window_range(
            cursor, now, config.base_period, config.allowed_lateness, config.max_catchup_windows
        )
        # Read the newest arrival first and look no further: an arrival committed while this tick
        # reads is seen by the next tick instead of being counted in the cursor unseen.
        newest = arrivals.max_id()
        new_spans = arrivals.spans(
            events_from=start,
            events_before=closed_end,
            store_base_period=monitoring.events.base_period,
            up_to_id=newest,
        )
        late_spans = (
            arrivals.spans(after_id=cursor.arrival_id, events_before=cursor.last_end, up_to_id=newest)
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
            max_arrival_id=newest,
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
                tags={
                    "mm/window": r.window.key,
                    "mm/revision": str(r.revision),
                    "dagster/max_runtime": str(config.max_run_seconds),
                },
            )
            for r in plan.requests
            if r.window.start >= config.start
        ]
        return SensorResult(run_requests=requests, cursor=plan.cursor.to_json())

    return mm_controller
