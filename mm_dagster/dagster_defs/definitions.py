"""Build the whole `Definitions` of a deployment from one `MonitoringConfig`."""

from collections.abc import Callable
from datetime import datetime

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    in_process_executor,
)

from mm_dagster.dagster_defs.assets import (
    WINDOW_EVENTS,
    ReportHook,
    build_app_assets,
    build_window_asset,
)
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.controller_sensor import build_controller_sensor
from mm_dagster.dagster_defs.partitions import window_partitions
from mm_dagster.dagster_defs.resources import MonitoringResource, resource_from_env
from mm_dagster.storage.database import utcnow

MONITORING_JOB = "mm_monitoring_job"


def build_definitions(
    config: MonitoringConfig,
    *,
    resource: MonitoringResource | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Definitions:
    partitions = window_partitions(config.base_period, config.partitions_start)
    hooks: list[ReportHook] = []
    extra_sensors = []
    if config.alerts or config.check_notifications:
        from mm_dagster.dagster_defs.alert_sensors import build_alert_wiring

        alert_hooks, extra_sensors = build_alert_wiring(config, clock)
        hooks += alert_hooks
    assets = [build_window_asset(partitions, config.base_period, config.allowed_lateness)]
    assets += [build_app_assets(app, partitions, config.base_period, hooks) for app in config.apps]
    job = define_asset_job(
        MONITORING_JOB,
        selection=AssetSelection.assets(WINDOW_EVENTS).downstream(),
        executor_def=in_process_executor,
        description="Runs every monitoring app on one window (the controller requests it).",
    )
    sensors = [build_controller_sensor(job, config, clock), *extra_sensors]
    return Definitions(
        assets=assets,
        jobs=[job],
        sensors=sensors,
        resources={"mm": resource or resource_from_env(config.base_period)},
    )
