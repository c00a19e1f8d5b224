"""Run monitoring apps on one window (plain Python; the Dagster assets call this).

Events are read once for all endpoints; each (app, endpoint) gets a lazy context; outputs are
validated and stored per app; a failure is isolated to its (app, endpoint) and recorded.
"""

import logging
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.outputs import normalise_outputs
from mm_dagster.artifacts import ArtifactStore
from mm_dagster.endpoints import EndpointRegistry, ModelEndpoint
from mm_dagster.references import ReferenceStore
from mm_dagster.schemas import ResultStatusApp
from mm_dagster.storage.results_store import Outputs, ResultsStore
from mm_dagster.windows import Window

log = logging.getLogger(__name__)


@dataclass
class AppWindowReport:
    """What one app did on one window: per-endpoint outputs and failures."""

    app: str
    window: Window
    outputs: dict[str, Outputs] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    endpoint_names: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def endpoints_analysed(self) -> int:
        return len(self.outputs)

    def statuses(self) -> dict[str, ResultStatusApp]:
        """Worst result status per endpoint (endpoints without results are left out)."""
        worst: dict[str, ResultStatusApp] = {}
        for endpoint_id, (results, _) in self.outputs.items():
            if results:
                worst[endpoint_id] = max(r.status for r in results)
        return worst

    def count(self, status: ResultStatusApp) -> int:
        return sum(1 for s in self.statuses().values() if s == status)

    def worst_value(self) -> float | None:
        values = [r.value for results, _ in self.outputs.values() for r in results]
        return max(values) if values else None

    def worst_endpoints(self, limit: int = 10) -> list[tuple[str, str, int, float]]:
        """(endpoint name, result name, status, value), worst first."""
        rows = [
            (self.endpoint_names.get(e, e), r.name, int(r.status), r.value)
            for e, (results, _) in self.outputs.items()
            for r in results
            if r.status >= ResultStatusApp.potential_detection
        ]
        return sorted(rows, key=lambda row: (-row[2], -row[3]))[:limit]


def run_app_on_endpoint(
    app: ModelMonitoringApplicationBase,
    endpoint: ModelEndpoint,
    window: Window,
    sample_df: pd.DataFrame,
    artifacts: ArtifactStore,
    references: ReferenceStore | None = None,
) -> tuple[Outputs, dict[str, str]]:
    """Call `do_tracking` once and validate what it returned (raises on any problem)."""
    context = MonitoringApplicationContext(
        application_name=app.name,
        endpoint=endpoint,
        window=window,
        sample_df=sample_df,
        artifacts=artifacts,
        references=references,
    )
    return normalise_outputs(app.do_tracking(context)), context.artifact_uris


def run_apps_on_window(
    apps: Sequence[ModelMonitoringApplicationBase],
    window: Window,
    events: Mapping[str, pd.DataFrame],
    registry: EndpointRegistry,
    results: ResultsStore,
    artifacts: ArtifactStore,
    references: ReferenceStore | None = None,
) -> list[AppWindowReport]:
    """Run every app on every endpoint with events in `events`, storing outputs per app."""
    endpoints = {e.id: e for e in registry.list(ids=list(events))}
    unknown = sorted(set(events) - set(endpoints))
    if unknown:
        log.warning(
            "window %s: events of %d unknown (deleted?) endpoints skipped: %s",
            window,
            len(unknown),
            unknown[:5],
        )
    reports = []
    for app in apps:
        report = AppWindowReport(
            app=app.name, window=window, endpoint_names={e.id: e.name for e in endpoints.values()}
        )
        for endpoint_id, endpoint in endpoints.items():
            try:
                outputs, uris = run_app_on_endpoint(
                    app, endpoint, window, events[endpoint_id], artifacts, references
                )
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                report.failures[endpoint_id] = (
                    f"app {app.name!r}, endpoint {endpoint.name!r} ({endpoint_id}), window {window}: {detail}"
                )
                log.warning(
                    "monitoring app failed: %s",
                    report.failures[endpoint_id],
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                continue
            report.outputs[endpoint_id] = outputs
            report.artifacts.update(uris)
        results.replace_window(app.name, window, report.outputs, report.failures)
        reports.append(report)
    return reports
