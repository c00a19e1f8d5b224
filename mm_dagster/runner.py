"""Run monitoring apps on one window (plain Python; the Dagster assets call this).

Events are read once for all endpoints; each (app, endpoint) gets a lazy context with its own
view of the events and a read-only view of the endpoint; outputs are validated and stored per
app. A failure is isolated to its (app, endpoint) and recorded: any exception, `SystemExit`
included (only `KeyboardInterrupt` stops the run). Each app has a time budget per window
(`app_timeout_seconds`): each call runs in a worker thread with the remaining budget as its
deadline; once it is exhausted, the call is abandoned (see `applications.deadline`) and the
endpoints left are recorded as timed out. An endpoint with segment columns is also analysed per
segment (see `core.segments`): each app runs once more per segment with rows in the window, with
that segment's rows and reference stats, within the same budget.
"""

import functools
import importlib
import logging
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, ParamSpec, TypeVar

import pandas as pd

from mm_dagster.applications.base import DEFAULT_APP_TIMEOUT_SECONDS, ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.deadline import AppTimeoutError, DeadlineWorker
from mm_dagster.applications.endpoint_view import EndpointView, window_views
from mm_dagster.applications.metric_history import MetricHistory
from mm_dagster.applications.persistence import apply_persistence
from mm_dagster.applications.silence import empty_sample
from mm_dagster.core.collector import fewer_collections
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import AppOutputError
from mm_dagster.core.histograms import FeatureHistogram
from mm_dagster.core.outputs import normalise_outputs
from mm_dagster.core.report import AppWindowReport, Outputs
from mm_dagster.core.segments import ENDPOINT_WIDE, EndpointSegments, Segment, segment_label
from mm_dagster.core.traffic import silent_endpoints
from mm_dagster.core.window_events import NumberBlock, numbers_of
from mm_dagster.core.windows import Window
from mm_dagster.storage.artifact_store import ArtifactStore
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.ordered_writes import Write
from mm_dagster.storage.reference_store import ReferenceStore
from mm_dagster.storage.results_store import ResultsStore

log = logging.getLogger(__name__)


def app_context(
    app: ModelMonitoringApplicationBase,
    endpoint: ModelEndpoint | EndpointView,
    window: Window,
    sample_df: pd.DataFrame,
    artifacts: ArtifactStore,
    references: ReferenceStore | None = None,
    invalid_events: Mapping[str, int] | None = None,
    *,
    logger: logging.Logger | None = None,
    project_name: str = "default",
    metric_history: MetricHistory | None = None,
    segment: Segment | None = None,
    segment_rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    runs_of_endpoint: int = 1,
    unmatched_labels: int = 0,
    sample_numbers: NumberBlock | None = None,
) -> MonitoringApplicationContext:
    """The context of one call of `app` (see `MonitoringApplicationContext`)."""
    return MonitoringApplicationContext(
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
        segment=segment,
        segment_rows=segment_rows,
        runs_of_endpoint=runs_of_endpoint,
        unmatched_labels=unmatched_labels,
        sample_numbers=sample_numbers,
    )


@dataclass(frozen=True)
class CallOutcome:
    """What one `do_tracking` call gave: validated outputs, artifact URIs, stored histograms."""

    outputs: Outputs
    artifacts: dict[str, str]
    histograms: Sequence[FeatureHistogram]


def track(app: ModelMonitoringApplicationBase, context: MonitoringApplicationContext) -> CallOutcome:
    """Call `do_tracking` once and validate what it returned (raises on any problem)."""
    return validated(app, app.do_tracking(context), context)


def validated(
    app: ModelMonitoringApplicationBase, returned: Any, context: MonitoringApplicationContext
) -> CallOutcome:
    """What the app returned for `context` (by `do_tracking` or `track_window`), validated
    (raises on any problem), with the context's artifacts and histograms."""
    outputs = normalise_outputs(returned)
    declared = type(app).RESULT_NAMES
    undeclared = sorted({r.name for r in outputs[0]} - set(declared)) if declared else []
    if undeclared:
        raise AppOutputError(
            f"do_tracking returned result(s) {undeclared} not among the app's RESULT_NAMES "
            f"{list(declared)}: declare them, so that a Dagster check watches them"
        )
    return CallOutcome(outputs, context.artifact_uris, context.histograms)


@dataclass(frozen=True)
class AppCall:
    """One call of an app in a window: an endpoint as a whole (`segment` ENDPOINT_WIDE) or one
    of its segments; its context is made when the call runs, so a failure making it is the
    call's failure."""

    endpoint_id: str
    segment: str
    where: str
    context: Callable[[], MonitoringApplicationContext]


def _tracked(app: ModelMonitoringApplicationBase, call: AppCall) -> CallOutcome:
    return track(app, call.context())


def run_app_on_endpoint(
    app: ModelMonitoringApplicationBase,
    endpoint: ModelEndpoint,
    window: Window,
    sample_df: pd.DataFrame,
    artifacts: ArtifactStore,
    references: ReferenceStore | None = None,
    invalid_events: Mapping[str, int] | None = None,
    **options: Any,
) -> tuple[Outputs, dict[str, str]]:
    """Call `do_tracking` once on one endpoint (`options`: `app_context`'s keywords); its
    validated outputs and artifact URIs (raises on any problem)."""
    context = app_context(app, endpoint, window, sample_df, artifacts, references, invalid_events, **options)
    outcome = track(app, context)
    return outcome.outputs, outcome.artifacts


def _budget(app: ModelMonitoringApplicationBase) -> float | None:
    budget = getattr(app, "app_timeout_seconds", DEFAULT_APP_TIMEOUT_SECONDS)
    return None if budget is None else float(budget)


@dataclass(frozen=True)
class SegmentRun:
    """One segment of one endpoint in one window: what its app calls get."""

    key: str
    segment: Segment
    endpoint: EndpointView  # the endpoint with the segment's reference stats
    sample_df: pd.DataFrame
    rows_of: Callable[[pd.DataFrame], pd.DataFrame]


def segment_runs(
    endpoint: ModelEndpoint,
    sample_df: pd.DataFrame,
    registry: EndpointRegistry,
    window: Window,
    project_name: str = "default",
) -> list[SegmentRun]:
    """The endpoint's segments with rows in the window (none without segment columns), or a
    warning saying why there are none."""
    if not endpoint.segment_columns:
        return []
    references = registry.segment_references(endpoint.id, endpoint.reference_version)
    where = f"window {window}, endpoint {endpoint.name!r} ({endpoint.id})"
    if not references:
        log.warning(
            "%s: no segment reference stats for reference version %d; endpoint-wide results only",
            where,
            endpoint.reference_version,
        )
        return []
    segments = EndpointSegments(list(endpoint.segment_columns), references)
    missing = segments.missing_columns(sample_df)
    if missing:
        log.warning(
            "%s: segment columns %s missing from the events; endpoint-wide results only", where, missing
        )
        return []
    return [
        SegmentRun(
            reference.key,
            reference.segment,
            EndpointView(
                replace(endpoint, feature_stats=reference.feature_stats, reference_rows=reference.rows),
                project_name,
            ),
            rows,
            partial(segments.rows_of, key=reference.key),
        )
        for reference, rows in segments.split(sample_df)
    ]


T = TypeVar("T")
P = ParamSpec("P")


def _numpy_huge_pages_setter() -> Callable[[bool], bool] | None:
    """numpy's switch for asking the kernel for transparent huge pages (`madvise`) for arrays of
    4 MB and more (what `NUMPY_MADVISE_HUGEPAGE` sets at import); None where numpy has none."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            setter: Callable[[bool], bool] = importlib.import_module(module)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
        return setter
    return None


@contextmanager
def base_pages() -> Iterator[None]:
    """numpy's large arrays on the kernel's base pages while a window is analysed: a huge page
    is zeroed (and, where the kernel compacts memory for it, found) when first touched, and a
    window's read and analysis touch GBs of new memory once. Measured, 3,000 endpoints through
    Dagster, alternating runs: 9.1-12.1 s (mean 10.8) vs 11.0-13.6 s (mean 12.4), kernel time
    2.3-3.8 s vs 4.3-4.7 s. Restored when it ends (inside another, nothing changes)."""
    setter = _numpy_huge_pages_setter()
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


@contextmanager
def analysing_a_window() -> Iterator[None]:
    """The process's memory settings while a window is read and analysed: `fewer_collections`
    and `base_pages`."""
    with fewer_collections(), base_pages():
        yield


def _analysing_a_window(fn: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with analysing_a_window():
            return fn(*args, **kwargs)

    return wrapper


@_analysing_a_window
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
    deadlines: dict[str, float] | None = None,
    write: Write | None = None,
    views: Mapping[str, EndpointView] | None = None,
) -> list[AppWindowReport]:
    """Run every app on every endpoint with events in `events`, storing outputs per app (by
    `write`, when given, which may store them after it returns: `storage.ordered_writes`).

    `logger` (default: `mm_dagster.apps.<app>`) receives the apps' `monitoring_context.logger`
    lines. `events` is never modified: each app gets its own view of each frame. An app with
    `silent_endpoint_windows` also runs, on an empty frame, on the endpoints that `recent_traffic`
    (endpoint id -> windows with its events before this one) shows steady and `events` silent.
    `deadlines` (app name -> `time.monotonic()` deadline), when given, is where each app's budget
    for the window runs out: set by the first call that runs the app, kept by the next (a window
    analysed in parts shares one budget per app). `views`: the endpoints' `window_views`, when
    the caller loaded them (the others are loaded here).
    """
    lookbacks = {app.silent_endpoint_windows for app in apps if app.silent_endpoint_windows}
    silent = {n: silent_endpoints(recent_traffic or {}, window, n, events) for n in lookbacks}
    ids = sorted(set(events).union(*silent.values()))
    loaded = {e: views[e] for e in ids if e in views} if views else {}
    views = {**loaded, **window_views(registry, [e for e in ids if e not in loaded], project_name)}
    endpoints = {endpoint_id: view.loaded for endpoint_id, view in views.items()}
    unknown = sorted(set(events) - set(endpoints))
    if unknown:
        log.warning(
            "window %s: events of %d unknown (deleted?) endpoints skipped: %s",
            window,
            len(unknown),
            unknown[:5],
        )
    versions = {e.id: (e.model_version, e.reference_version) for e in endpoints.values()}
    segments = {
        endpoint_id: runs
        for endpoint_id, endpoint in endpoints.items()
        if endpoint.segment_columns
        and endpoint_id in events
        and (runs := segment_runs(endpoint, events[endpoint_id], registry, window, project_name))
    }
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
        per_segment = getattr(app, "run_per_segment", True)
        calls: list[AppCall] = []
        for endpoint_id, endpoint in analysed.items():
            where = f"app {app.name!r}, endpoint {endpoint.name!r} ({endpoint_id}), window {window}"
            runs = segments.get(endpoint_id, []) if per_segment else []
            calls.append(
                AppCall(
                    endpoint_id,
                    ENDPOINT_WIDE,
                    where,
                    partial(
                        app_context,
                        app,
                        views[endpoint_id],
                        window,
                        samples[endpoint_id],
                        artifacts,
                        references,
                        (invalid_events or {}).get(endpoint_id),
                        logger=logger,
                        project_name=project_name,
                        metric_history=history,
                        runs_of_endpoint=1 + len(runs),
                        unmatched_labels=(unmatched_labels or {}).get(endpoint_id, 0),
                        sample_numbers=numbers_of(events, endpoint_id),
                    ),
                )
            )
            calls += [
                AppCall(
                    endpoint_id,
                    run.key,
                    f"{where}, segment {segment_label(run.segment)}",
                    partial(
                        app_context,
                        app,
                        run.endpoint,
                        window,
                        run.sample_df,
                        artifacts,
                        references,
                        None,
                        logger=logger,
                        project_name=project_name,
                        segment=run.segment,
                        segment_rows=run.rows_of,
                        runs_of_endpoint=1 + len(runs),
                    ),
                )
                for run in runs
            ]
        for call, outcome in zip(calls, _run_calls(app, calls, deadlines), strict=True):
            if isinstance(outcome, str):
                if call.segment == ENDPOINT_WIDE:
                    report.failures[call.endpoint_id] = outcome
                else:
                    report.segment_failures.setdefault(call.endpoint_id, {})[call.segment] = outcome
            else:
                if call.segment == ENDPOINT_WIDE:
                    report.outputs[call.endpoint_id] = outcome.outputs
                else:
                    report.segment_outputs.setdefault(call.endpoint_id, {})[call.segment] = outcome.outputs
                _keep(report, call.endpoint_id, call.segment, outcome)
        persistence = getattr(app, "persistence", None)
        if persistence is not None:  # endpoint-wide results (segments' stand alone)
            report.outputs = apply_persistence(persistence, app.name, window, report.outputs, results)
        store = partial(
            results.replace_window,
            app.name,
            window,
            report.outputs,
            report.failures,
            versions,
            report.segment_outputs,
            report.segment_failures,
            report.histograms,
        )
        if write is None:
            store()
        else:
            write(store)
        reports.append(report)
    return reports


def _keep(report: AppWindowReport, endpoint_id: str, segment: str, outcome: CallOutcome) -> None:
    report.artifacts.update(outcome.artifacts)
    if outcome.histograms:
        report.histograms.setdefault(endpoint_id, {})[segment] = outcome.histograms


def _run_calls(
    app: ModelMonitoringApplicationBase, calls: Sequence[AppCall], deadlines: dict[str, float] | None = None
) -> list[CallOutcome | str]:
    """Each call's outcome or failure, within the app's time budget: one `track_window` call
    for all when the app has the batch hook (per call when it fails as a whole), else one
    `do_tracking` call each, one after another in one worker thread."""
    budget = _budget(app)
    deadline = None if budget is None else time.monotonic() + budget
    if deadline is not None and deadlines is not None:
        deadline = deadlines.setdefault(app.name, deadline)
    worker = DeadlineWorker(name=f"mm-app-{app.name}")
    try:
        if app.tracks_windows and calls:
            batch = _run_batch(app, calls, worker, deadline, budget)
            if batch is not None:
                return batch
        return [
            _call_app(partial(_tracked, app, call), worker, deadline, budget, call.where) for call in calls
        ]
    finally:
        worker.close()


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _run_batch(
    app: ModelMonitoringApplicationBase,
    calls: Sequence[AppCall],
    worker: DeadlineWorker,
    deadline: float | None,
    budget: float | None,
) -> list[CallOutcome | str] | None:
    """The calls' outcomes from one `track_window` call; None when it failed as a whole (the
    caller then runs `do_tracking` per call)."""
    contexts: list[MonitoringApplicationContext | str] = []
    for call in calls:
        try:
            contexts.append(call.context())
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            contexts.append(_failure(call.where, exc))
    made = [c for c in contexts if not isinstance(c, str)]
    where = f"app {app.name!r}, track_window of {len(made)} endpoint(s) and segment(s)"
    try:
        returned = list(worker.call(partial(app.track_window, made), _remaining(deadline)))
        if len(returned) != len(made):
            raise AppOutputError(f"track_window returned {len(returned)} entries for {len(made)} contexts")
    except KeyboardInterrupt:
        raise
    except AppTimeoutError:
        log.warning("monitoring app timed out: %s: after %g s", where, budget)
        return [
            c if isinstance(c, str) else f"{call.where}: timed out after {budget:g} s"
            for call, c in zip(calls, contexts, strict=True)
        ]
    except BaseException as exc:
        log.warning(
            "monitoring app failed: %s: %s; running do_tracking per endpoint instead",
            where,
            "".join(traceback.format_exception_only(type(exc), exc)).strip(),
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return None
    entries = iter(returned)
    outcomes: list[CallOutcome | str] = []
    for call, context in zip(calls, contexts, strict=True):
        if isinstance(context, str):
            outcomes.append(context)
            continue
        entry = next(entries)
        try:
            if isinstance(entry, BaseException):
                raise entry
            outcomes.append(validated(app, entry, context))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            outcomes.append(_failure(call.where, exc))
    return outcomes


def _failure(where: str, exc: BaseException) -> str:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    failure = f"{where}: {detail}"
    log.warning("monitoring app failed: %s", failure, exc_info=log.isEnabledFor(logging.DEBUG))
    return failure


def _call_app(
    call: Callable[[], CallOutcome],
    worker: DeadlineWorker,
    deadline: float | None,
    budget: float | None,
    where: str,
) -> CallOutcome | str:
    """What one app call gave, or the failure to record (any exception,
    `SystemExit` too: an app must not end the run; only `KeyboardInterrupt` propagates)."""
    try:
        return worker.call(call, _remaining(deadline))
    except KeyboardInterrupt:
        raise
    except AppTimeoutError:
        failure = f"{where}: timed out after {budget:g} s"
        log.warning("monitoring app timed out: %s", failure)
        return failure
    except BaseException as exc:
        return _failure(where, exc)
