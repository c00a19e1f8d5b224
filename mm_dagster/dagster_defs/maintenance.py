"""The event store's maintenance as a Dagster job on a schedule (`mm maintain` runs the same)."""

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)

from mm_dagster.core.clock import Clock
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.events.maintenance import MaintenancePolicy


def build_maintenance(config: MonitoringConfig, clock: Clock) -> tuple[JobDefinition, ScheduleDefinition]:
    names = config.names
    policy = MaintenancePolicy(retention=config.retention, allowed_lateness=config.allowed_lateness)

    @op(
        name=f"{names.maintenance_job}_op",
        required_resource_keys={names.resource_key},
        description="Compacts closed windows, deletes events past retention, sweeps leftovers.",
    )
    def maintain_event_store(context: OpExecutionContext) -> None:
        resource = getattr(context.resources, names.resource_key)
        assert isinstance(resource, MonitoringResource)
        report = resource.monitoring.maintain(policy, now=clock())
        for line in report.lines:
            context.log.info(line)

    @job(
        name=names.maintenance_job,
        description=f"Event store upkeep: compaction, retention ({config.retention.days} days), cleanup.",
    )
    def maintenance_job() -> None:
        maintain_event_store()

    schedule = ScheduleDefinition(
        name=names.maintenance_schedule,
        job=maintenance_job,
        cron_schedule=config.maintenance_cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Runs the event store maintenance.",
    )
    return maintenance_job, schedule
