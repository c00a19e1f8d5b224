"""Run monitoring apps on one window (plain Python; the Dagster assets call this).

Events are read once for all endpoints; each (app, endpoint) gets a lazy context; outputs are
validated and stored per app; a failure is isolated to its (app, endpoint) and recorded.
"""

import logging
import traceback
from collections.abc import Mapping, Sequence

import pandas as pd

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.outputs import normalise_outputs
from mm_dagster.core.report import AppWindowReport, Outputs
from mm_dagster.core.windows import Window
from mm_dagster.storage.artifact_store import ArtifactStore
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.reference_store import ReferenceStore
from mm_dagster.storage.results_store import ResultsStore

log = logging.getLogger(__name__)


def run_app_on_endpoint(
    app: ModelMonitoringApplicationBase,
    endpoint: ModelEndpoint,
    window: Window,
    sample_df: pd.DataFrame,
    artifacts: ArtifactStore,
    references: ReferenceStore | None = None,
    invalid_events: Mapping[str, int] | None = None,
) -> tuple[Outputs, dict[str, str]]:
    """Call `do_tracking` once and validate what it returned (raises on any problem)."""
    context = MonitoringApplicationContext(
        application_name=app.name,
        endpoint=endpoint,
        window=window,
        sample_df=sample_df,
        artifacts=artifacts,
        references=references,
        invalid_events=invalid_events,
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
    invalid_events: Mapping[str, Mapping[str, int]] | None = None,
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
    versions = {e.id: (e.model_version, e.reference_version) for e in endpoints.values()}
    reports = []
    for app in apps:
        report = AppWindowReport(
            app=app.name, window=window, endpoint_names={e.id: e.name for e in endpoints.values()}
        )
        for endpoint_id, endpoint in endpoints.items():
            try:
                outputs, uris = run_app_on_endpoint(
                    app,
                    endpoint,
                    window,
                    events[endpoint_id],
                    artifacts,
                    references,
                    (invalid_events or {}).get(endpoint_id),
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
        results.replace_window(app.name, window, report.outputs, report.failures, versions)
        reports.append(report)
    return reports
