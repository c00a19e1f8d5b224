"""The window asset and the per-app asset factory (spec §5)."""

from collections.abc import Callable, Sequence

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    asset,
    multi_asset,
)

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.dagster_defs.partitions import windows_of_run
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.dagster_defs.window_cache import window_events
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage.arrival_log import late_events

WINDOW_EVENTS = AssetKey(["mm", "window_events"])
CHECK_NAME = "no_detections"
GROUP = "model_monitoring"

ReportHook = Callable[[Monitoring, AppWindowReport], None]


def results_key(app_name: str) -> AssetKey:
    return AssetKey(["mm", app_name, "results"])


def metrics_key(app_name: str) -> AssetKey:
    return AssetKey(["mm", app_name, "metrics"])


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def window_summary(events: dict[str, pd.DataFrame], names: dict[str, str]) -> dict[str, object]:
    rows = sorted(
        ((names.get(e, e), len(df), int(df["error"].notna().sum())) for e, df in events.items()),
        key=lambda r: -r[1],
    )
    return {
        "events": sum(r[1] for r in rows),
        "endpoints": len(rows),
        "errors": sum(r[2] for r in rows),
        "per_endpoint": MetadataValue.md(
            _markdown_table(["endpoint", "events", "errors"], rows[:200])
            + (f"\n\n…and {len(rows) - 200} more" if len(rows) > 200 else "")
        ),
    }


def build_window_asset(
    partitions_def: TimeWindowPartitionsDefinition, base_period: int, allowed_lateness: pd.Timedelta
) -> AssetsDefinition:
    @asset(
        key=WINDOW_EVENTS,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"parquet"},
        description="The window's inference events for all endpoints (Parquet event store).",
    )
    def window_events_asset(context: AssetExecutionContext, mm: MonitoringResource) -> MaterializeResult:
        monitoring = mm.monitoring()
        windows = windows_of_run(context, base_period)
        names = monitoring.endpoints.names()
        totals = {"events": 0, "endpoints": 0, "errors": 0, "late_events": 0}
        metadata: dict[str, object] = {}
        for window in windows:
            summary = window_summary(window_events(context.run.run_id, monitoring, window), names)
            late = late_events(monitoring.engine, window, window.end + allowed_lateness)
            for k in ("events", "endpoints", "errors"):
                totals[k] += int(summary[k])  # type: ignore[call-overload]
            totals["late_events"] += late
            metadata = {**summary, "late_events": late}
        if len(windows) > 1:
            metadata = {
                "windows": len(windows),
                "range": f"{windows[0].key} .. {windows[-1].key}",
                **{f"total_{k}": v for k, v in totals.items()},
            }
        metadata["events_root"] = monitoring.settings.events_root
        return MaterializeResult(metadata=metadata)  # type: ignore[arg-type]

    return window_events_asset


def check_result_for(report: AppWindowReport) -> tuple[bool, AssetCheckSeverity, dict[str, object]]:
    """ERROR when any endpoint's result is detected, WARN when any is potential, else pass."""
    detected = report.count(ResultStatusApp.detected)
    potential = report.count(ResultStatusApp.potential_detection)
    worst = report.worst_endpoints()
    metadata: dict[str, object] = {
        "window": report.window.key,
        "detected_endpoints": detected,
        "potential_endpoints": potential,
        "endpoints_analysed": report.endpoints_analysed,
    }
    if worst:
        metadata["worst_endpoints"] = MetadataValue.md(
            _markdown_table(
                ["endpoint", "result", "status", "value"],
                [(e, n, ResultStatusApp(s).name, f"{v:.4f}") for e, n, s, v in worst],
            )
        )
    if detected:
        return False, AssetCheckSeverity.ERROR, metadata
    if potential:
        return False, AssetCheckSeverity.WARN, metadata
    return True, AssetCheckSeverity.ERROR, metadata


def report_metadata(report: AppWindowReport) -> dict[str, object]:
    metadata: dict[str, object] = {
        "endpoints_analysed": report.endpoints_analysed,
        "endpoints_failed": len(report.failures),
        "detected": report.count(ResultStatusApp.detected),
        "potential": report.count(ResultStatusApp.potential_detection),
    }
    worst = report.worst_value()
    if worst is not None:
        metadata["worst_value"] = worst
    if report.failures:
        metadata["failures"] = MetadataValue.md(
            "\n".join(f"- {err}" for err in list(report.failures.values())[:20])
        )
    for key, uri in list(report.artifacts.items())[:20]:
        metadata[f"artifact_{key}"] = MetadataValue.url(uri)
    return metadata


def build_app_assets(
    app: ModelMonitoringApplicationBase,
    partitions_def: TimeWindowPartitionsDefinition,
    base_period: int,
    on_report: Sequence[ReportHook] = (),
) -> AssetsDefinition:
    """One multi-asset per app: its results and metrics assets, and its per-window check."""
    app_name = app.name
    r_key, m_key = results_key(app_name), metrics_key(app_name)

    @multi_asset(
        name=f"mm_app_{app_name.replace('-', '_')}",
        specs=[
            AssetSpec(
                key,
                deps=[WINDOW_EVENTS],
                group_name=GROUP,
                kinds={"sql"},
                description=f"{what} of monitoring app {app_name!r} per endpoint and window.",
            )
            for key, what in ((r_key, "Results"), (m_key, "Metrics"))
        ],
        check_specs=[
            AssetCheckSpec(
                CHECK_NAME,
                asset=r_key,
                partitions_def=partitions_def,
                description="Fails with ERROR when any endpoint's result is detected, "
                "WARN when any is potential_detection.",
            )
        ],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        # Subsettable so a backfill range may record its per-window check results itself.
        can_subset=True,
    )
    def app_assets(context: AssetExecutionContext, mm: MonitoringResource):  # type: ignore[no-untyped-def]
        monitoring = mm.monitoring()
        windows = windows_of_run(context, base_period)
        reports: list[AppWindowReport] = []
        for window in windows:
            events = window_events(context.run.run_id, monitoring, window)
            report = monitoring.run_window([app], window, events)[0]
            for hook in on_report:
                hook(monitoring, report)
            reports.append(report)
        failed_everywhere = [r for r in reports if r.failures and not r.outputs]
        if failed_everywhere:
            raise Failure(
                description=f"app {app_name!r} failed for every endpoint in "
                f"{len(failed_everywhere)} window(s)",
                metadata={
                    "errors": MetadataValue.md(
                        "\n".join(f"- {e}" for r in failed_everywhere for e in list(r.failures.values())[:5])
                    )
                },
            )
        metadata = (
            report_metadata(reports[0])
            if len(reports) == 1
            else {
                "windows": len(reports),
                "endpoints_analysed": sum(r.endpoints_analysed for r in reports),
                "endpoints_failed": sum(len(r.failures) for r in reports),
            }
        )
        selected = context.selected_asset_keys
        if r_key in selected:
            yield MaterializeResult(asset_key=r_key, metadata=metadata)  # type: ignore[arg-type]
        if m_key in selected:
            yield MaterializeResult(
                asset_key=m_key,
                metadata={"metrics": sum(len(out[1]) for r in reports for out in r.outputs.values())},
            )
        if AssetCheckKey(r_key, CHECK_NAME) not in context.selected_asset_check_keys:
            return
        if len(reports) == 1:
            passed, severity, meta = check_result_for(reports[0])
            yield AssetCheckResult(
                passed=passed,
                severity=severity,
                metadata=meta,  # type: ignore[arg-type]
                asset_key=r_key,
                check_name=CHECK_NAME,
            )
            return
        for report in reports:
            passed, severity, meta = check_result_for(report)
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=r_key,
                    check_name=CHECK_NAME,
                    passed=passed,
                    severity=severity,
                    metadata=meta,
                    partition=report.window.key,  # type: ignore[arg-type]
                )
            )

    return app_assets
