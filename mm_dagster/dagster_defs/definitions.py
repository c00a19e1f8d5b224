"""Build the whole `Definitions` of a deployment from one `MonitoringConfig`."""

import warnings
from collections.abc import Callable
from datetime import datetime

from dagster import (
    AssetSelection,
    BetaWarning,
    Definitions,
    PreviewWarning,
    define_asset_job,
    in_process_executor,
)

from mm_dagster.core.clock import utcnow
from mm_dagster.dagster_defs.alert_sensors import build_alert_wiring
from mm_dagster.dagster_defs.assets import (
    WINDOW_EVENTS,
    build_app_assets,
    build_window_asset,
)
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.controller_sensor import build_controller_sensor
from mm_dagster.dagster_defs.partitions import window_partitions
from mm_dagster.dagster_defs.resources import MonitoringResource, resource_from_env

MONITORING_JOB = "mm_monitoring_job"


def build_definitions(
    config: MonitoringConfig,
    *,
    resource: MonitoringResource | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Definitions:
    with warnings.catch_warnings():
        # Partitioned asset checks are a preview in Dagster 1.13: the minor version is pinned and
        # tests/test_dagster_pipeline.py proves check results are recorded per partition.
        warnings.simplefilter("ignore", PreviewWarning)
        warnings.simplefilter("ignore", BetaWarning)
        return _build(config, resource, clock)


def _build(
    config: MonitoringConfig, resource: MonitoringResource | None, clock: Callable[[], datetime]
) -> Definitions:
    partitions = window_partitions(config.base_period, config.partitions_start)

    # Alert events are stored for every window (so `mm alerts events` has the history even
    # before any alert is configured); rules, delivery and check notifications use the config.
    hooks, extra_sensors = build_alert_wiring(config, clock)

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
