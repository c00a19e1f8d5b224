"""The shard assets: each runs every app on one shard of a window's endpoints (see
`MonitoringConfig.shards`), as its own step that the run's executor may place anywhere."""

import time
from collections.abc import Sequence

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    FreshnessPolicy,
    MaterializeResult,
    TimeWindowPartitionsDefinition,
    asset,
)

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.shards import Shard
from mm_dagster.dagster_defs.assets import WINDOW_EVENTS, app_logs_in_run, resource_of, windows_of_run
from mm_dagster.dagster_defs.config import DefinitionNames


def shard_summary(reports: Sequence[AppWindowReport], seconds: float) -> dict[str, float | int]:
    """What one shard's analysis of one window did: endpoints analysed and failed per app."""
    summary: dict[str, float | int] = {"seconds": round(seconds, 3)}
    for report in reports:
        summary[f"{report.app}_analysed"] = report.endpoints_analysed
        summary[f"{report.app}_failed"] = len(report.failures)
    summary["endpoints"] = len({e for r in reports for e in r.endpoint_names})
    return summary


def build_shard_asset(
    shard: Shard,
    apps: Sequence[ModelMonitoringApplicationBase],
    partitions_def: TimeWindowPartitionsDefinition,
    names: DefinitionNames,
    project: str = "default",
    owners: Sequence[str] = (),
    freshness: FreshnessPolicy | None = None,
) -> AssetsDefinition:
    key: AssetKey = names.shard_asset_key(shard)
    app_names = [app.name for app in apps]

    @asset(
        key=key,
        deps=[names.asset_key(WINDOW_EVENTS)],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=names.group,
        kinds={"python"},
        owners=list(owners),
        freshness_policy=freshness,
        tags={"mm/kind": "analysis", "mm/shard": str(shard.index + 1)},
        required_resource_keys={names.resource_key},
        description=(
            f"The analysis of {shard.label} of every window: merges this shard's small event files "
            "of the window into one file per slot (when there are many), then each monitoring app "
            f"({', '.join(app_names)}) runs on the endpoints of this shard (a stable hash of the "
            "endpoint id) and stores their "
            "results, metrics and failures; a re-run replaces them. Metadata per window: endpoints, "
            "endpoints analysed and failed per app, seconds."
        ),
    )
    def shard_analysis(context: AssetExecutionContext) -> MaterializeResult[None]:
        mm = resource_of(context, names)
        windows = windows_of_run(context)
        with app_logs_in_run(context, app_names, windows):
            for window in windows:
                started = time.perf_counter()
                for compacted in mm.monitoring.compact_window(window, shard):
                    context.log.info(
                        f"window {window.key}: merged {compacted.files_merged} event files of "
                        f"{compacted.endpoints} endpoints into {compacted.files_written} "
                        f"(slot {compacted.slot_start:%H:%M}) before reading them"
                    )
                reports = mm.monitoring.analyse_window(apps, window, shard, project)
                context.add_asset_metadata(
                    shard_summary(reports, time.perf_counter() - started),
                    asset_key=key,
                    partition_key=window.key,
                )
        return MaterializeResult(asset_key=key)

    return shard_analysis
