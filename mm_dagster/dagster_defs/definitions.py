"""Build the whole `Definitions` of a deployment from one `MonitoringConfig`."""

import warnings

from dagster import (
    AssetSelection,
    BetaWarning,
    Definitions,
    PreviewWarning,
    define_asset_job,
    in_process_executor,
)

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.shards import all_shards
from mm_dagster.dagster_defs.alert_sensors import build_alert_wiring
from mm_dagster.dagster_defs.assets import WINDOW_EVENTS, build_app_assets, build_window_asset
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.controller_sensor import build_controller_sensor
from mm_dagster.dagster_defs.freshness import analysis_freshness
from mm_dagster.dagster_defs.maintenance import build_maintenance
from mm_dagster.dagster_defs.partitions import window_partitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.dagster_defs.shard_assets import build_shard_asset


def build_definitions(
    config: MonitoringConfig, *, resource: MonitoringResource | None = None, clock: Clock = utcnow
) -> Definitions:
    """Assets, checks, job, sensors and the resource of one config. Configs with distinct
    `prefix`es combine with `Definitions.merge`."""
    resource = resource or MonitoringResource(base_period=config.base_period)
    if resource.base_period != config.base_period:
        raise MonitoringError(
            f"the resource's base_period ({resource.base_period}) differs from the config's "
            f"({config.base_period}): give MonitoringResource(base_period={config.base_period}, ...)"
        )
    with warnings.catch_warnings():
        # Partitioned asset checks are a preview in Dagster 1.13: the minor version is pinned and
        # tests/test_dagster_pipeline.py proves check results are recorded per partition.
        warnings.simplefilter("ignore", PreviewWarning)
        warnings.simplefilter("ignore", BetaWarning)
        return _build(config, resource, clock)


def _build(config: MonitoringConfig, resource: MonitoringResource, clock: Clock) -> Definitions:
    names = config.names
    partitions = window_partitions(config.base_period, config.start)
    # Alert events are stored for every window (so `mm alerts events` has the history even
    # before any alert is configured); rules, delivery and check notifications use the config.
    on_window, delivery_sensor = build_alert_wiring(config, clock)
    freshness = analysis_freshness(config.base_period)
    assets = [build_window_asset(partitions, config.allowed_lateness, names, config.owners, freshness)]
    shards = all_shards(config.shards)
    assets += [
        build_shard_asset(shard, config.apps, partitions, names, config.project, config.owners, freshness)
        for shard in shards
    ]
    analyses = [names.shard_asset_key(shard) for shard in shards]
    assets += [
        build_app_assets(app, partitions, names, analyses, [on_window], config.owners, freshness)
        for app in config.apps
    ]
    job = define_asset_job(
        names.job,
        selection=AssetSelection.assets(names.asset_key(WINDOW_EVENTS)).downstream(),
        executor_def=config.executor or in_process_executor,
        description=(
            "Runs every monitoring app on one window (the controller requests it): "
            f"{config.shards} shard step(s), then one results step per app."
        ),
    )
    maintenance_job, maintenance_schedule = build_maintenance(config, clock)
    return Definitions(
        assets=assets,
        jobs=[job, maintenance_job],
        sensors=[build_controller_sensor(config, clock), delivery_sensor],
        schedules=[maintenance_schedule],
        resources={names.resource_key: resource},
    )
