"""Run monitoring apps on one window (plain Python; the Dagster assets call this).

Events are read once for all endpoints; each (app, endpoint) gets a lazy context with its own
view of the events and a read-only view of the endpoint; outputs are validated and stored per
app. A failure is isolated to its (app, endpoint) and recorded: any exception, `SystemExit`
included (only `KeyboardInterrupt` stops the run). Each app has a time budget per window
(`app_timeout_seconds`): each call runs in a worker thread with the remaining budget as its
deadline; once it is exhausted, the call is abandoned (see `applications.deadline`) and the
endpoints left are recorded as timed out.
"""

import logging
import time
import traceback
from collections.abc import Collection, Mapping, Sequence
from functools import partial

import pandas as pd

from mm_dagster.applications.base import DEFAULT_APP_TIMEOUT_SECONDS, ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.deadline import AppTimeoutError, call_with_deadline
from mm_dagster.applications.endpoint_view import monitored_endpoint
from mm_dagster.applications.metric_history import MetricHistory
from mm_dagster.applications.persistence import apply_persistence
from mm_dagster.applications.silence import empty_sample
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.outputs import normalise_outputs
from mm_dagster.core.report import AppWindowReport, Outputs
from mm_dagster.core.traffic import silent_endpoints
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
    *,
    logger: logging.Logger | None = None,
    project_name: str = "default",
    metric_history: MetricHistory | None = None,
    unmatched_labels: int = 0,
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
        logger=logger,
        project_name=project_name,
        metric_history=metric_history,
        unmatched_labels=unmatched_labels,
    )
    return normalise_outputs(app.do_tracking(context)), context.artifact_uris


def _budget(app: ModelMonitoringApplicationBase) -> float | None:
    budget = getattr(app, "app_timeout_seconds", DEFAULT_APP_TIMEOUT_SECONDS)
    return None if budget is None else float(budget)


def run_apps_on_window(
    apps: Sequence[ModelMonitoringApplicationBase],
    window: Window,
    events: Mapping[str, pd.DataFrame],
    registry: EndpointRegistry,
    results: ResultsStore,
    artifacts: ArtifactStore,
    references: ReferenceStore | None = None,
    invalid_events: Mapping[str, Mapping[str, int]] | None = None,
    *,
    logger: logging.Logger | None = None,
    project_name: str = "default",
    recent_traffic: Mapping[str, Collection[Window]] | None = None,
    unmatched_labels: Mapping[str, int] | None = None,
) -> list[AppWindowReport]:
    """Run every app on every endpoint with events in `events`, storing outputs per app.

    `logger` (default: `mm_dagster.apps.<app>`) receives the apps' `monitoring_context.logger`
    lines. `events` is never modified: each app gets its own view of each frame. An app with
    `silent_endpoint_windows` also runs, on an empty frame, on the endpoints that `recent_traffic`
    (endpoint id -> windows with its events before this one) shows steady and `events` silent.
    """
    lookbacks = {app.silent_endpoint_windows for app in apps if app.silent_endpoint_windows}
    silent = {n: silent_endpoints(recent_traffic or {}, window, n, events) for n in lookbacks}
    ids = sorted(set(events).union(*silent.values()))
    endpoints = {e.id: monitored_endpoint(e, project_name) for e in registry.list(ids=ids)}
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
        samples = {e: events[e] for e in endpoints if e in events}
        if app.silent_endpoint_windows:
            quiet = silent[app.silent_endpoint_windows]
            samples.update({e: empty_sample(endpoints[e]) for e in quiet if e in endpoints})
        analysed = {e: endpoints[e] for e in sorted(samples)}
        report = AppWindowReport(
            app=app.name, window=window, endpoint_names={e.id: e.name for e in analysed.values()}
        )
        history = MetricHistory(results, app.name, window)
        budget = _budget(app)
        deadline = None if budget is None else time.monotonic() + budget
        for endpoint_id, endpoint in analysed.items():
            where = f"app {app.name!r}, endpoint {endpoint.name!r} ({endpoint_id}), window {window}"
            try:
                outputs, uris = call_with_deadline(
                    partial(
                        run_app_on_endpoint,
                        app,
                        endpoint,
                        window,
                        samples[endpoint_id],
                        artifacts,
                        references,
                        (invalid_events or {}).get(endpoint_id),
                        logger=logger,
                        project_name=project_name,
                        metric_history=history,
                        unmatched_labels=(unmatched_labels or {}).get(endpoint_id, 0),
                    ),
                    None if deadline is None else deadline - time.monotonic(),
                    name=f"mm-app-{app.name}",
                )
            except KeyboardInterrupt:
                raise
            except AppTimeoutError:
                report.failures[endpoint_id] = f"{where}: timed out after {budget:g} s"
                log.warning("monitoring app timed out: %s", report.failures[endpoint_id])
                continue
            except BaseException as exc:  # SystemExit too: an app must not end the run
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                report.failures[endpoint_id] = f"{where}: {detail}"
                log.warning(
                    "monitoring app failed: %s",
                    report.failures[endpoint_id],
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                continue
            report.outputs[endpoint_id] = outputs
            report.artifacts.update(uris)
        persistence = getattr(app, "persistence", None)
        if persistence is not None:
            report.outputs = apply_persistence(persistence, app.name, window, report.outputs, results)
        results.replace_window(app.name, window, report.outputs, report.failures, versions)
        reports.append(report)
    return reports
