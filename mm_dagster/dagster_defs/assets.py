"""The window asset and the per-app asset factory (spec §5)."""

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    DagsterLogManager,
    Failure,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    asset,
    multi_asset,
)

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.links import UiLinks
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.windows import Window, split_range
from mm_dagster.dagster_defs.checks import (
    CHECK_DESCRIPTION,
    CHECK_NAME,
    CheckVerdict,
    check_verdict,
    markdown_table,
)
from mm_dagster.dagster_defs.config import DefinitionNames
from mm_dagster.dagster_defs.page_links import flagged_window_pages
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring

WINDOW_EVENTS = "window_events"


@dataclass(frozen=True)
class WindowOutcome:
    """What an app step learnt about one window: the app's report and its check verdict."""

    report: AppWindowReport
    verdict: CheckVerdict
    run_id: str


WindowHook = Callable[[Monitoring, WindowOutcome], None]


def windows_of_run(context: AssetExecutionContext) -> list[Window]:
    """The windows a run covers: one for a single partition, several for a backfill range."""
    time_window = context.partition_time_window
    return split_range(time_window.start, time_window.end, len(context.partition_keys))


def resource_of(context: AssetExecutionContext, names: DefinitionNames) -> MonitoringResource:
    resource = getattr(context.resources, names.resource_key)
    assert isinstance(resource, MonitoringResource)
    return resource


def window_summary(events: dict[str, pd.DataFrame], names: dict[str, str]) -> dict[str, Any]:
    rows = sorted(
        ((names.get(e, e), len(df), int(df["error"].notna().sum())) for e, df in events.items()),
        key=lambda r: -r[1],
    )
    return {
        "events": sum(r[1] for r in rows),
        "endpoints": len(rows),
        "errors": sum(r[2] for r in rows),
        "per_endpoint": MetadataValue.md(
            markdown_table(["endpoint", "events", "errors"], rows[:200])
            + (f"\n\n…and {len(rows) - 200} more" if len(rows) > 200 else "")
        ),
    }


class DagsterLogHandler(logging.Handler):
    """Forwards an app's stdlib log records (`monitoring_context.logger`, whose lines carry the
    app, endpoint and window) to the Dagster step's `context.log`, i.e. into the run's logs.
    Records of other windows (a timed-out call of an earlier run, say) are left out."""

    def __init__(self, dagster_log: DagsterLogManager, windows: Collection[str]) -> None:
        super().__init__(logging.DEBUG)
        self.dagster_log = dagster_log
        self.windows = set(windows)

    def filter(self, record: logging.LogRecord) -> bool:
        window = getattr(record, "mm_context", {}).get("window")
        return window is None or window in self.windows

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.dagster_log.log(record.levelno, self.format(record))
        except Exception:
            self.handleError(record)


@contextmanager
def app_logs_in_run(
    context: AssetExecutionContext, app_name: str, windows: Sequence[Window]
) -> Iterator[None]:
    """For the duration of the step, the app's logger (`mm_dagster.apps.<app>`, the context's
    default) also writes to the run's logs, from INFO up (it is lowered to INFO if need be)."""
    logger = logging.getLogger(f"mm_dagster.apps.{app_name}")
    handler = DagsterLogHandler(context.log, [w.key for w in windows])
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def build_window_asset(
    partitions_def: TimeWindowPartitionsDefinition, allowed_lateness: timedelta, names: DefinitionNames
) -> AssetsDefinition:
    @asset(
        key=names.asset_key(WINDOW_EVENTS),
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=names.group,
        kinds={"parquet"},
        required_resource_keys={names.resource_key},
        description="The window's inference events for all endpoints (Parquet event store).",
    )
    def window_events_asset(context: AssetExecutionContext) -> MaterializeResult[None]:
        mm = resource_of(context, names)
        monitoring = mm.monitoring
        windows = windows_of_run(context)
        endpoint_names = monitoring.endpoints.names()
        totals = {"events": 0, "endpoints": 0, "errors": 0, "late_events": 0, "invalid_events": 0}
        metadata: dict[str, Any] = {}
        for window in windows:
            summary = window_summary(mm.window_events(window), endpoint_names)
            late = monitoring.arrivals.late_events(window, window.end + allowed_lateness)
            invalid = monitoring.invalid_events.counts(window.start, window.end)
            invalid_total = sum(sum(reasons.values()) for reasons in invalid.values())
            totals["invalid_events"] += invalid_total
            for k in ("events", "endpoints", "errors"):
                totals[k] += int(summary[k])
            totals["late_events"] += late
            metadata = {**summary, "late_events": late, "invalid_events": invalid_total}
        if len(windows) > 1:
            metadata = {
                "windows": len(windows),
                "range": f"{windows[0].key} .. {windows[-1].key}",
                **{f"total_{k}": v for k, v in totals.items()},
            }
        metadata["events_root"] = monitoring.settings.events_root
        metadata["overview"] = MetadataValue.url(UiLinks.from_env().overview())
        return MaterializeResult(metadata=metadata)

    return window_events_asset


def report_metadata(report: AppWindowReport, links: UiLinks | None = None) -> dict[str, Any]:
    """The results asset's metadata: counts, failures, and for flagged endpoints a link to their
    window page on the monitoring service (`links`, default `UiLinks.from_env()`: `MM_UI_URL`).
    Artifacts apps logged are named by path (files on the run's host, not links)."""
    metadata: dict[str, Any] = {
        "endpoints_analysed": report.endpoints_analysed,
        "endpoints_failed": len(report.failures),
        "detected": report.count(ResultStatusApp.detected),
        "potential": report.count(ResultStatusApp.potential_detection),
    }
    if report.segment_outputs:
        metadata["segments_analysed"] = report.segments_analysed
        metadata["segments_detected"] = report.count_segments(ResultStatusApp.detected)
        metadata["segments_potential"] = report.count_segments(ResultStatusApp.potential_detection)
    worst = report.worst_value()
    if worst is not None:
        metadata["worst_value"] = worst
    if report.failures:
        metadata["failures"] = MetadataValue.md(
            "\n".join(f"- {err}" for err in list(report.failures.values())[:20])
        )
    metadata.update(flagged_window_pages(report, links or UiLinks.from_env()))
    for key, uri in list(report.artifacts.items())[:20]:
        metadata[f"artifact_{key}"] = MetadataValue.path(uri.removeprefix("file://"))
    return metadata


def _run_metadata(reports: Sequence[AppWindowReport]) -> dict[str, Any]:
    if len(reports) == 1:
        return report_metadata(reports[0])
    return {
        "windows": len(reports),
        "endpoints_analysed": sum(r.endpoints_analysed for r in reports),
        "endpoints_failed": sum(len(r.failures) for r in reports),
    }


def build_app_assets(
    app: ModelMonitoringApplicationBase,
    partitions_def: TimeWindowPartitionsDefinition,
    names: DefinitionNames,
    on_window: Sequence[WindowHook] = (),
    project: str = "default",
) -> AssetsDefinition:
    """One multi-asset per app: its results and metrics assets, and its per-window check."""
    app_name = app.name
    r_key, m_key = names.asset_key(app_name, "results"), names.asset_key(app_name, "metrics")
    check_key = AssetCheckKey(r_key, CHECK_NAME)
    check_label = f"{r_key.to_user_string()}:{CHECK_NAME}"

    @multi_asset(
        name=names.app_node(app_name),
        specs=[
            AssetSpec(
                key,
                deps=[names.asset_key(WINDOW_EVENTS)],
                group_name=names.group,
                kinds={"sql"},
                description=f"{what} of monitoring app {app_name!r} per endpoint and window.",
            )
            for key, what in ((r_key, "Results"), (m_key, "Metrics"))
        ],
        check_specs=[
            AssetCheckSpec(
                CHECK_NAME, asset=r_key, partitions_def=partitions_def, description=CHECK_DESCRIPTION
            )
        ],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        # Subsettable so a backfill range may record its per-window check results itself.
        can_subset=True,
        required_resource_keys={names.resource_key},
    )
    def app_assets(
        context: AssetExecutionContext,
    ) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
        mm = resource_of(context, names)
        monitoring = mm.monitoring
        outcomes: list[WindowOutcome] = []
        windows = windows_of_run(context)
        with app_logs_in_run(context, app_name, windows):
            for window in windows:
                report = monitoring.run_window([app], window, mm.window_events(window), project_name=project)
                outcome = WindowOutcome(report[0], check_verdict(check_label, report[0]), context.run.run_id)
                for hook in on_window:
                    hook(monitoring, outcome)
                outcomes.append(outcome)
        reports = [o.report for o in outcomes]
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
        selected = context.selected_asset_keys
        if r_key in selected:
            yield MaterializeResult(asset_key=r_key, metadata=_run_metadata(reports))
        if m_key in selected:
            metrics = sum(len(out[1]) for r in reports for out in r.outputs.values())
            yield MaterializeResult(asset_key=m_key, metadata={"metrics": metrics})
        if check_key not in context.selected_asset_check_keys:
            return
        if len(outcomes) == 1:
            verdict = outcomes[0].verdict
            yield AssetCheckResult(
                passed=verdict.passed,
                severity=verdict.severity,
                metadata=verdict.metadata,
                asset_key=r_key,
                check_name=CHECK_NAME,
            )
            return
        for outcome in outcomes:
            verdict = outcome.verdict
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=r_key,
                    check_name=CHECK_NAME,
                    passed=verdict.passed,
                    severity=verdict.severity,
                    metadata=verdict.metadata,
                    partition=verdict.window_key,
                )
            )

    return app_assets
