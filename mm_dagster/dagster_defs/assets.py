"""The window asset and the per-app asset factory (spec §5)."""

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    DagsterLogManager,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    TimeWindowPartitionsDefinition,
    asset,
    multi_asset,
)

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.links import UiLinks
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.windows import Window, split_range
from mm_dagster.dagster_defs.checks import CheckVerdict, check_verdict, flagged_summary, window_checks
from mm_dagster.dagster_defs.config import DefinitionNames
from mm_dagster.dagster_defs.page_links import flagged_table, flagged_window_pages
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.runner import analysing_a_window

WINDOW_EVENTS = "window_events"


@dataclass(frozen=True)
class WindowOutcome:
    """What an app step learnt about one window: the app's report and its checks' verdicts."""

    report: AppWindowReport
    verdicts: Sequence[CheckVerdict]
    run_id: str


WindowHook = Callable[[Monitoring, WindowOutcome], None]


def run_status_tag(reports: Sequence[AppWindowReport]) -> str:
    """The worst status of any endpoint (or segment) over the run's windows, as a tag value;
    `app_failed` when the app failed somewhere and found nothing worse than no detection."""
    statuses = [s for r in reports for s in [*r.statuses().values(), *r.segment_statuses().values()]]
    failed = any(r.failures for r in reports)
    worst = max(statuses, default=None)
    if failed and (worst is None or worst < ResultStatusApp.potential_detection):
        return "app_failed"
    return "no_results" if worst is None else worst.name


def tag_run_with_status(
    context: AssetExecutionContext, app_name: str, reports: Sequence[AppWindowReport]
) -> None:
    """`mm/<app>: detected` on the run: a run that found drift succeeds (green) in the runs list,
    and this tag is what says it found something."""
    context.instance.add_run_tags(context.run.run_id, {f"mm/{app_name}": run_status_tag(reports)})


def windows_of_run(context: AssetExecutionContext) -> list[Window]:
    """The windows a run covers: one for a single partition, several for a backfill range."""
    time_window = context.partition_time_window
    return split_range(time_window.start, time_window.end, len(context.partition_keys))


def resource_of(context: AssetExecutionContext, names: DefinitionNames) -> MonitoringResource:
    resource = getattr(context.resources, names.resource_key)
    assert isinstance(resource, MonitoringResource)
    return resource


PER_ENDPOINT_SCHEMA = TableSchema(
    columns=[
        TableColumn("endpoint", "string"),
        TableColumn("events", "int"),
        TableColumn("errors", "int"),
        TableColumn("page", "string", description="the endpoint's page on the monitoring service"),
    ]
)
MAX_TABLE_ROWS = 200


def window_summary(
    counts: dict[str, tuple[int, int]], names: dict[str, str], links: UiLinks
) -> dict[str, Any]:
    """Events, endpoints, errors and error rate of one window (`counts`: endpoint id -> (events,
    errors)), and a table per endpoint."""
    rows = sorted(
        ((names.get(e, e), n, err) for e, (n, err) in counts.items()),
        key=lambda r: (-r[1], r[0]),
    )
    total = sum(r[1] for r in rows)
    errors = sum(r[2] for r in rows)
    return {
        "events": total,
        "endpoints": len(rows),
        "errors": errors,
        "error_rate": round(errors / total, 6) if total else 0.0,
        "per_endpoint": MetadataValue.table(
            [
                TableRecord({"endpoint": name, "events": n, "errors": err, "page": links.endpoint(name)})
                for name, n, err in rows[:MAX_TABLE_ROWS]
            ],
            PER_ENDPOINT_SCHEMA,
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
    context: AssetExecutionContext, app_names: Sequence[str], windows: Sequence[Window]
) -> Iterator[None]:
    """For the duration of the step, the apps' loggers (`mm_dagster.apps.<app>`, the context's
    default) also write to the run's logs, from INFO up (lowered to INFO if need be)."""
    handler = DagsterLogHandler(context.log, [w.key for w in windows])
    loggers = [logging.getLogger(f"mm_dagster.apps.{name}") for name in app_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def first_analysis(context: AssetExecutionContext, key: AssetKey, window: Window) -> datetime | None:
    """When the window was first analysed: its first materialization in this Dagster instance."""
    first = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[window.key]), limit=1, ascending=True
    ).records
    return datetime.fromtimestamp(first[0].timestamp, UTC) if first else None


def late_events(
    monitoring: Monitoring, window: Window, allowed_lateness: timedelta, first_analysed: datetime | None
) -> int:
    """Events of `window` written after it closed and after its first analysis (`first_analysed`,
    else the analysis the stores hold, which a re-run replaces): the stragglers re-analyses took
    in. History written after the window closed but before any analysis (a first run, a
    backfill) is not late."""
    analysed = [t for t in (first_analysed, monitoring.results.analysed_at(window.start)) if t is not None]
    if not analysed:
        return 0
    return monitoring.arrivals.late_events(window, max(window.end + allowed_lateness, min(analysed)))


def build_window_asset(
    partitions_def: TimeWindowPartitionsDefinition,
    allowed_lateness: timedelta,
    names: DefinitionNames,
    owners: Sequence[str] = (),
    freshness: FreshnessPolicy | None = None,
) -> AssetsDefinition:
    key = names.asset_key(WINDOW_EVENTS)

    @asset(
        key=key,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=names.group,
        kinds={"parquet"},
        owners=list(owners),
        tags={"mm/kind": "events"},
        freshness_policy=freshness,
        required_resource_keys={names.resource_key},
        description=(
            "One partition per monitoring window: the inference events every endpoint logged in it "
            "(Parquet event store). Metadata per window: events, endpoints, errors and error rate, "
            "late events (arrived after the window closed and after its first analysis, i.e. what "
            "re-analyses took in), invalid events, and a table of events per endpoint."
        ),
    )
    def window_events_asset(context: AssetExecutionContext) -> MaterializeResult[None]:
        mm = resource_of(context, names)
        monitoring = mm.monitoring
        links = UiLinks.from_env()
        endpoint_names = monitoring.endpoints.names()
        for window in windows_of_run(context):
            invalid = monitoring.invalid_events.counts(window.start, window.end)
            context.add_asset_metadata(
                {
                    **window_summary(monitoring.window_event_counts(window), endpoint_names, links),
                    "late_events": late_events(
                        monitoring, window, allowed_lateness, first_analysis(context, key, window)
                    ),
                    "invalid_events": sum(sum(reasons.values()) for reasons in invalid.values()),
                },
                asset_key=key,
                partition_key=window.key,
            )
        return MaterializeResult(
            metadata={
                "events_root": monitoring.settings.events_root,
                "overview": MetadataValue.url(links.overview()),
            }
        )

    return window_events_asset


def report_metadata(report: AppWindowReport, links: UiLinks | None = None) -> dict[str, Any]:
    """The results asset's metadata for one window: counts per status (plotted over partitions),
    worst value, failures, the flagged results as a table, and for flagged endpoints a link to
    their window page on the monitoring service (`links`, default `UiLinks.from_env()`:
    `MM_UI_URL`). Artifacts apps logged are named by path (files on the run's host, not links)."""
    links = links or UiLinks.from_env()
    counts = report.counts_by_status()
    endpoints = report.endpoint_counts()
    metadata: dict[str, Any] = {
        "endpoints_analysed": report.endpoints_analysed,
        "endpoints_failed": len(report.failures),
        "detected": endpoints[ResultStatusApp.detected],
        "potential": endpoints[ResultStatusApp.potential_detection],
        **{f"results_{status.name}": n for status, n in counts.items()},
    }
    if report.segment_outputs:
        metadata["segments_analysed"] = report.segments_analysed
        metadata["segments_detected"] = report.count_segments(ResultStatusApp.detected)
        metadata["segments_potential"] = report.count_segments(ResultStatusApp.potential_detection)
    worst = report.worst_value()
    if worst is not None:
        metadata["worst_value"] = worst
    if report.failures:
        metadata["failures"] = "\n".join(list(report.failures.values())[:20])
    if report.flagged_count():
        metadata["flagged"] = flagged_summary(report)
        metadata["flagged_results"] = flagged_table(report)
    metadata.update(flagged_window_pages(report, links))
    for key, uri in list(report.artifacts.items())[:20]:
        metadata[f"artifact_{artifact_label(key, report.endpoint_names)}"] = MetadataValue.path(
            uri.removeprefix("file://")
        )
    return metadata


def artifact_label(key: str, endpoint_names: dict[str, str]) -> str:
    """An artifact key as people read it: a per-endpoint key's endpoint id (`summary-<id>`)
    replaced by the endpoint's name."""
    for endpoint_id, name in endpoint_names.items():
        if f"-{endpoint_id}" in key:
            return key.replace(f"-{endpoint_id}", f"-{name}", 1)
    return key


def result_names_of(app: ModelMonitoringApplicationBase) -> str:
    return ", ".join(app.RESULT_NAMES) if app.RESULT_NAMES else "the results it reports"


def build_app_assets(
    app: ModelMonitoringApplicationBase,
    partitions_def: TimeWindowPartitionsDefinition,
    names: DefinitionNames,
    analyses: Sequence[AssetKey],
    on_window: Sequence[WindowHook] = (),
    owners: Sequence[str] = (),
    freshness: FreshnessPolicy | None = None,
) -> AssetsDefinition:
    """One multi-asset per app: its results and metrics assets, and its per-window checks. The
    app runs in the shard steps (`analyses`, see `shard_assets`); this step reads the window's
    stored results back whole, records its checks and runs `on_window` (alerts)."""
    app_name = app.name
    r_key, m_key = names.app_asset_key(app_name, "results"), names.app_asset_key(app_name, "metrics")
    checks = window_checks(app)
    check_keys = {c.name: AssetCheckKey(r_key, c.name) for c in checks}
    descriptions = {
        r_key: (
            f"Results of monitoring app {app_name!r} ({result_names_of(app)}) per endpoint and window, "
            "each with a status against the app's thresholds. One partition per window; metadata per "
            "window: results per status, worst value, the flagged endpoints with their top drifting "
            "features and links to the monitoring service's window pages."
        ),
        m_key: f"Metrics of monitoring app {app_name!r} per endpoint and window (no status).",
    }

    @multi_asset(
        name=names.app_node(app_name),
        specs=[
            AssetSpec(
                key,
                deps=list(analyses),
                group_name=names.group,
                kinds={"sql"},
                owners=list(owners),
                tags={"mm/app": app_name, "mm/kind": kind},
                freshness_policy=freshness,
                description=descriptions[key],
            )
            for key, kind in ((r_key, "results"), (m_key, "metrics"))
        ],
        check_specs=[
            AssetCheckSpec(c.name, asset=r_key, partitions_def=partitions_def, description=c.description)
            for c in checks
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
        selected_checks = [c for c in checks if check_keys[c.name] in context.selected_asset_check_keys]
        evaluations: list[CheckVerdict] = []
        reports: list[AppWindowReport] = []
        with analysing_a_window():  # a report holds every endpoint's outputs of the window
            for window in windows_of_run(context):
                report = monitoring.window_report(app_name, window)
                verdicts = [check_verdict(f"{r_key.to_user_string()}:{c.name}", c.of(report)) for c in checks]
                outcome = WindowOutcome(report, verdicts, context.run.run_id)
                for hook in on_window:
                    hook(monitoring, outcome)
                evaluations += [v for c, v in zip(checks, verdicts, strict=True) if c in selected_checks]
                reports.append(report)
        failed_everywhere = [r for r in reports if r.failures and not r.outputs]
        if failed_everywhere:
            raise Failure(
                description=f"app {app_name!r} failed for every endpoint in "
                f"{len(failed_everywhere)} window(s)",
                metadata={
                    "errors": "\n".join(e for r in failed_everywhere for e in list(r.failures.values())[:5])
                },
            )
        tag_run_with_status(context, app_name, reports)
        selected = context.selected_asset_keys
        for report in reports:
            if r_key in selected:
                context.add_asset_metadata(
                    report_metadata(report), asset_key=r_key, partition_key=report.window.key
                )
            if m_key in selected:
                metrics = sum(len(out[1]) for _, _, out in report.keyed_outputs())
                context.add_asset_metadata(
                    {"metrics": metrics}, asset_key=m_key, partition_key=report.window.key
                )
        for key in (r_key, m_key):
            if key in selected:
                yield MaterializeResult(asset_key=key)
        if len(reports) == 1:
            for verdict in evaluations:
                yield AssetCheckResult(
                    passed=verdict.passed,
                    severity=verdict.severity,
                    metadata=verdict.metadata,
                    asset_key=r_key,
                    check_name=verdict.check.rsplit(":", 1)[1],
                )
            return
        for verdict in evaluations:
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=r_key,
                    check_name=verdict.check.rsplit(":", 1)[1],
                    passed=verdict.passed,
                    severity=verdict.severity,
                    metadata=verdict.metadata,
                    partition=verdict.window_key,
                )
            )

    return app_assets
