"""`Monitoring`: one object that owns the stores of a deployment (spec §4)."""

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mm_dagster.applications.base import (
    RECORDER_COLUMNS,
    ModelMonitoringApplicationBase,
    event_columns_read,
    silence_lookback,
)
from mm_dagster.applications.endpoint_view import EndpointView, decode_plans, window_views
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.controller import window_counts
from mm_dagster.core.endpoint import DEFAULT_MAX_SEGMENTS, ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.model_task import ModelTask
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.shards import EVERY_ENDPOINT, MAX_SHARDS, Shard
from mm_dagster.core.stored_report import detail_keys, stored_window_report
from mm_dagster.core.traffic import windows_touched
from mm_dagster.core.window_events import WindowEvents
from mm_dagster.core.windows import Window, validate_base_period
from mm_dagster.events.ingest import EventIngestor
from mm_dagster.events.labels import DEFAULT_LABEL_HORIZON, LabelIngestor, LabelReceipt, join_labels
from mm_dagster.events.maintenance import MaintenancePolicy, MaintenanceReport, compact_window, maintain
from mm_dagster.events.recorder import (
    DEFAULT_MAX_BUFFERED,
    DEFAULT_SPOOL_BYTES,
    EventRecorder,
    monitored,
)
from mm_dagster.events.validation import EventRules
from mm_dagster.reports.endpoint_page import render_endpoint_page
from mm_dagster.reports.html import PLOTLY_JS, plotly_js
from mm_dagster.runner import analysing_a_window, run_apps_on_window
from mm_dagster.storage.arrival_log import ArrivalLog
from mm_dagster.storage.artifact_store import ArtifactStore
from mm_dagster.storage.database import create_engine
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_catalog import CatalogFile, EventCatalog
from mm_dagster.storage.event_store import CompactionResult, EventStore
from mm_dagster.storage.float_block import FloatBuffer
from mm_dagster.storage.invalid_events import InvalidEventLog
from mm_dagster.storage.label_store import LabelStore, LabelSummary
from mm_dagster.storage.ordered_writes import OrderedWrites, Write
from mm_dagster.storage.read_ahead import read_ahead
from mm_dagster.storage.reference_store import DEFAULT_SAMPLE_ROWS, ReferenceStore
from mm_dagster.storage.results_store import ResultsStore
from mm_dagster.storage.spool import Spool
from mm_dagster.storage.wal_checkpoints import WalCheckpoints

log = logging.getLogger(__name__)

DEFAULT_HOME = ".mm_home"


@dataclass(frozen=True)
class WindowCoverage:
    """A window with stored events (`events` counts every event of the files touching it) and
    the apps with results, metrics or failures stored for it."""

    window: Window
    events: int
    apps: list[str]


DEFAULT_BASE_PERIOD = 10
ANALYSIS_PART_ENDPOINTS = 2_000  # endpoints read and analysed at once (see `analyse_window`)


@dataclass(frozen=True)
class StorageSettings:
    """Where things live, resolved once (`resolve`) from explicit values, then the environment.

    | setting | environment | default |
    | --- | --- | --- |
    | home | `MM_HOME` | `./.mm_home` (made absolute) |
    | database_url | `MM_DATABASE_URL` | `sqlite:///<home>/mm.db` |
    | events_root | `MM_EVENTS_ROOT` | `<home>/events` |
    | artifacts_root | `MM_ARTIFACTS_ROOT` | `<home>/artifacts` |
    | references_root | `MM_REFERENCES_ROOT` | `<home>/references` |
    | spool_dir | `MM_SPOOL_DIR` | `<home>/spool` |
    | base_period | (the `MonitoringConfig`'s) | 10 minutes |

    The roots are local paths or pyarrow filesystem URIs (`s3://bucket/prefix`); the home holds
    only the defaults, so with every setting given nothing is written under it. The spool (a
    recorder's batches while the store is unreachable) must be on local disk.
    """

    home: str
    database_url: str
    events_root: str
    artifacts_root: str
    references_root: str
    spool_dir: str
    base_period: int = DEFAULT_BASE_PERIOD

    @classmethod
    def resolve(
        cls,
        home: str | None = None,
        database_url: str | None = None,
        events_root: str | None = None,
        artifacts_root: str | None = None,
        base_period: int = DEFAULT_BASE_PERIOD,
        environ: Mapping[str, str] | None = None,
        *,
        references_root: str | None = None,
        spool_dir: str | None = None,
    ) -> "StorageSettings":
        """Empty or None values fall back to the environment, then to the defaults above."""
        env = os.environ if environ is None else environ
        home = str(Path(home or env.get("MM_HOME") or DEFAULT_HOME).absolute())
        spool_dir = spool_dir or env.get("MM_SPOOL_DIR") or f"{home}/spool"
        if "://" in spool_dir:
            raise MonitoringError(
                f"spool_dir (MM_SPOOL_DIR) must be a local directory, got {spool_dir!r}: the spool "
                "keeps batches while the event store is unreachable"
            )
        return cls(
            home=home,
            database_url=database_url or env.get("MM_DATABASE_URL") or f"sqlite:///{home}/mm.db",
            events_root=events_root or env.get("MM_EVENTS_ROOT") or f"{home}/events",
            artifacts_root=artifacts_root or env.get("MM_ARTIFACTS_ROOT") or f"{home}/artifacts",
            references_root=references_root or env.get("MM_REFERENCES_ROOT") or f"{home}/references",
            spool_dir=str(Path(spool_dir).absolute()),
            base_period=validate_base_period(base_period),
        )


class Monitoring:
    """Endpoints, event recording, app runs and results for one deployment.

    `Monitoring()` resolves `StorageSettings` from the environment; keyword arguments override
    single settings. It owns a database engine: `close()` (or `with Monitoring() as mm:`) releases it.
    """

    def __init__(
        self,
        settings: StorageSettings | None = None,
        *,
        home: str | None = None,
        database_url: str | None = None,
        events_root: str | None = None,
        artifacts_root: str | None = None,
        references_root: str | None = None,
        base_period: int = DEFAULT_BASE_PERIOD,
        clock: Clock = utcnow,
        event_rules: EventRules | None = None,
        label_horizon: timedelta = DEFAULT_LABEL_HORIZON,
        analysis_part_endpoints: int = ANALYSIS_PART_ENDPOINTS,
    ) -> None:
        if analysis_part_endpoints < 1:
            raise MonitoringError(f"analysis_part_endpoints must be >= 1, got {analysis_part_endpoints}")
        # a window's endpoints are read and analysed in parts of at most this many (see `analyse_window`)
        self.analysis_part_endpoints = analysis_part_endpoints
        self.settings = settings or StorageSettings.resolve(
            home,
            database_url,
            events_root,
            artifacts_root,
            base_period,
            references_root=references_root,
        )
        self.clock = clock
        self.engine = create_engine(self.settings.database_url)
        self.wal_checkpoints = WalCheckpoints.of_engine(self.engine)
        self.endpoints = EndpointRegistry(self.engine, clock)
        self.catalog = EventCatalog(self.engine, clock)
        self.events = EventStore(self.settings.events_root, self.settings.base_period, self.catalog)
        self.arrivals = ArrivalLog(self.engine, self.endpoints, self.catalog)
        self.labels = LabelStore(self.engine, self.events.base_period, clock)
        self.label_ingestor = LabelIngestor(
            self.labels, self.events, self.endpoints, event_rules, horizon=label_horizon
        )
        self.ingestor = EventIngestor(
            self.events,
            self.endpoints,
            self.arrivals,
            event_rules,
            after_store=[self.label_ingestor.match_events],
        )
        self.invalid_events = InvalidEventLog(self.engine, clock)
        self.results = ResultsStore(self.engine, clock)
        self.artifacts = ArtifactStore(self.settings.artifacts_root, self.engine, clock)
        self.references = ReferenceStore(self.settings.references_root)

    def close(self) -> None:
        if self.wal_checkpoints is not None:
            self.wal_checkpoints.close()
        self.engine.dispose()

    def __enter__(self) -> "Monitoring":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def create_endpoint(
        self,
        name: str,
        *,
        reference: pd.DataFrame | None = None,
        feature_names: Sequence[str] | None = None,
        label_names: Sequence[str] = (),
        column_types: Mapping[str, str] | None = None,
        model_name: str = "",
        model_version: str = "",
        model_uri: str = "",
        reference_sample_rows: int = DEFAULT_SAMPLE_ROWS,
        segment_columns: Sequence[str] | None = None,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        task: ModelTask | None = None,
    ) -> ModelEndpoint:
        """Get-or-create an endpoint; a reference frame is summarised into `feature_stats` and a
        sample of it (`reference_sample_rows`, default 100k) is kept for apps like Evidently.
        `segment_columns` (e.g. `["country"]`) make every app also run per segment: the
        reference's `max_segments` largest values, the rest pooled as `__other__`.
        `task` declares what the model predicts (its outputs are `label_names`); a reference
        holding the task's target column is labelled: the sample keeps it and the reference's
        performance is computed now and stored with the reference version."""
        endpoint = self.endpoints.create(
            name,
            reference=reference,
            feature_names=feature_names,
            label_names=label_names,
            column_types=column_types,
            model_name=model_name,
            model_version=model_version,
            model_uri=model_uri,
            segment_columns=segment_columns,
            max_segments=max_segments,
            task=task,
        )
        if reference is not None:
            kept = _kept_columns(endpoint, reference)
            stored = self.references.columns(endpoint.id)
            # Saved once; again only when a task declared later labels a sample stored without it.
            target = endpoint.task.target if endpoint.task is not None else None
            if not stored or (target in kept and target not in stored):
                self.references.save(endpoint.id, reference[kept], reference_sample_rows)
        return endpoint

    def update_reference(
        self,
        endpoint: str,
        reference: pd.DataFrame,
        *,
        model_version: str | None = None,
        model_uri: str | None = None,
        reference_sample_rows: int = DEFAULT_SAMPLE_ROWS,
        segment_columns: Sequence[str] | None = None,
        max_segments: int | None = None,
    ) -> ModelEndpoint:
        """Monitor against a new reference (and model version) from now on; the previous ones
        stay in `endpoints.reference_history`, and every result records the versions it used.
        Segment columns and their cap are kept unless given (`segment_columns=[]`: none)."""
        updated = self.endpoints.update_reference(
            endpoint,
            reference,
            model_version=model_version,
            model_uri=model_uri,
            segment_columns=segment_columns,
            max_segments=max_segments,
        )
        self.references.save(updated.id, reference[_kept_columns(updated, reference)], reference_sample_rows)
        return updated

    def get_endpoint(self, name_or_id: str) -> ModelEndpoint:
        return self.endpoints.get(name_or_id)

    def list_endpoints(self) -> list[ModelEndpoint]:
        return self.endpoints.list()

    def delete_endpoint(self, name_or_id: str) -> None:
        self.endpoints.delete(name_or_id)

    def record_events(
        self, endpoint: str | ModelEndpoint, events: pd.DataFrame, *, timestamp_unit: str | None = None
    ) -> int:
        """Store a batch of events (MLRun's `record_results`); all or none. Numeric timestamps
        (`time.time()`) need their unit: `timestamp_unit="s"`."""
        return self.ingestor.record_events(endpoint, events, timestamp_unit=timestamp_unit)

    record_results = record_events

    def record_labels(
        self, endpoint: str | ModelEndpoint, labels: pd.DataFrame, *, timestamp_unit: str | None = None
    ) -> LabelReceipt:
        """Store ground truth: `request_id`, the task's target column and an optional label
        `timestamp`; all or none, a later label for a request replaces the earlier. The windows of
        the predictions labelled are re-run by the controller; labels whose prediction is not
        stored yet are kept, counted (`label_summary`) and matched when it is."""
        return self.label_ingestor.record_labels(endpoint, labels, timestamp_unit=timestamp_unit)

    def label_summary(self, endpoint: str | ModelEndpoint) -> LabelSummary:
        """How many labels the endpoint has, and how many wait for their prediction."""
        ep = endpoint if isinstance(endpoint, ModelEndpoint) else self.get_endpoint(endpoint)
        return self.labels.summary(ep.id)

    def match_labels(self, endpoint: str | ModelEndpoint) -> int:
        """Search the stored events again for the predictions of unmatched labels."""
        return self.label_ingestor.match_stored(endpoint)

    def recorder(
        self,
        max_events: int = 1000,
        max_seconds: float = 5.0,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        spool_dir: str | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_BYTES,
        handle_signals: bool = True,
    ) -> EventRecorder:
        """A background recorder for a serving process (see `events.recorder`). Its spool
        (default `settings.spool_dir`) must be on local disk: it holds batches while the store is
        down."""
        return EventRecorder(
            self.ingestor,
            self.invalid_events,
            Spool(spool_dir or self.settings.spool_dir, spool_max_bytes),
            max_events=max_events,
            max_seconds=max_seconds,
            max_buffered=max_buffered,
            handle_signals=handle_signals,
        )

    def monitored(
        self, predict: Callable[[Any], Any], endpoint: str, recorder: EventRecorder | None = None
    ) -> Callable[[Any], Any]:
        return monitored(predict, endpoint, recorder or self.recorder())

    def read_window(
        self, window: Window, shard: Shard = EVERY_ENDPOINT, columns: str = "all"
    ) -> dict[str, pd.DataFrame]:
        """The window's events per endpoint (of `shard`'s endpoints only); endpoints with a task
        get their target column (labels joined by request id, null where not labelled), one label
        query for all. A `WindowEvents`: the frames' float columns as read come with them.
        `columns`: "all", or "model" (what apps with `event_columns = "model"` read: not the
        recorder's latencies and errors, nor request ids unless labels are joined)."""
        return self._read_window(window, shard, columns)

    def _read_window(
        self,
        window: Window,
        shard: Shard,
        columns: str,
        listed: Mapping[str, Sequence[CatalogFile]] | None = None,
        float_buffer: FloatBuffer | None = None,
        tasks: bool | None = None,
    ) -> dict[str, pd.DataFrame]:
        """`read_window`; `listed`, `float_buffer`: see `EventStore.read_window`; `tasks`:
        whether any endpoint declares a task, when the caller asked (`has_tasks`): without
        one, no labels are joined."""
        if columns not in ("all", "model"):
            raise MonitoringError(f"columns must be 'all' or 'model', got {columns!r}")
        if tasks is None:
            tasks = self.endpoints.has_tasks()
        leave_out: set[str] = set()
        if columns == "model":
            leave_out = set(RECORDER_COLUMNS) - ({"request_id"} if tasks else set())
        events = self.events.read_window(
            window, shard=shard, leave_out=leave_out, listed=listed, float_buffer=float_buffer
        )
        targets = self.endpoints.targets(list(events)) if tasks else {}
        if not targets:
            return events
        return join_labels(events, targets, self.labels.for_window(window, list(targets)))

    def run_window(
        self,
        apps: Sequence[ModelMonitoringApplicationBase],
        window: Window,
        events: dict[str, pd.DataFrame] | None = None,
        *,
        project_name: str = "default",
        shard: Shard = EVERY_ENDPOINT,
    ) -> list[AppWindowReport]:
        """Run `apps` on every endpoint of `shard` with events in `window` (`events`: read here,
        in parts, when not given: see `analyse_window`); `project_name` is what the apps'
        `monitoring_context.project_name` says (the `MonitoringConfig.project` under Dagster).
        Each shard's analysis stores its own endpoints' results; the reports cover those
        endpoints only (`window_report` reads the whole window's back)."""
        if events is None:
            return self.analyse_window(apps, window, shard, project_name)
        with analysing_a_window():
            return self._run_window(apps, window, events, project_name, shard)

    def analyse_window(
        self,
        apps: Sequence[ModelMonitoringApplicationBase],
        window: Window,
        shard: Shard = EVERY_ENDPOINT,
        project_name: str = "default",
    ) -> list[AppWindowReport]:
        """`run_window` reading the window itself, in parts: the endpoints of `shard` with events
        in the window are split into parts of at most `analysis_part_endpoints` (sub-shards of
        `shard`: ranges of the shard key, so each part's read skips the others' row groups), and
        each part is read (only the columns the apps read) while the one before it is analysed
        (`storage.read_ahead`), then analysed, stored and released, so a window's peak memory
        stays that of two parts (measured, 10,000 endpoints x 20 features in one process: 2.1-2.2
        GB in 5 parts read ahead, 2.0 GB in 4 parts read one at a time, 3.45 GB read whole; a
        5,000-endpoint half took 9 s where the whole took 22-25 s). Results are the same for any
        parts (each endpoint's are its own); each app's time budget is shared by the parts. The
        window's files are listed once, and each part's float columns are gathered into the
        memory the part before the last used (`storage.float_block.FloatBuffer`). A part that
        cannot be read, or whose results cannot be stored, fails the analysis; the parts before
        it stay stored. Returns one report per app for the whole shard."""
        columns = event_columns_read(apps)
        deadlines: dict[str, float] = {}
        parts: list[list[AppWindowReport]] = []
        listed = self.events.window_files(window)
        buffers = (FloatBuffer(), FloatBuffer())  # the part analysed, the part read beside it
        tasks = self.endpoints.has_tasks()
        pieces = self.window_parts(window, shard, listed)
        plans_read = any(app.reads_reference_plans for app in apps)

        def read(n: int) -> tuple[dict[str, pd.DataFrame], dict[str, EndpointView]]:
            events = self._read_window(window, pieces[n], columns, listed, buffers[n % 2], tasks)
            views = window_views(self.endpoints, sorted(events), project_name)
            if plans_read:
                decode_plans(views.values())
            return events, views

        # the reads too are analysing a window (their frames live until the apps end); a part's
        # outputs are stored while the next part is read and analysed
        with (
            analysing_a_window(),
            closing(read_ahead(read, len(pieces), "mm-reads")) as reads,
            OrderedWrites("mm-results") as writes,
        ):
            for events, views in reads:  # not zipped: a zip's tuple would hold the part read before
                part = pieces[len(parts)]
                parts.append(
                    self._run_window(
                        apps, window, events, project_name, part, deadlines, writes.submit, views
                    )
                )
                del events, views
        if len(pieces) > 1:
            log.debug(
                "window %s, %s: %d of %d parts read into the memory of the part before the last",
                window.key,
                shard,
                buffers[0].reused + buffers[1].reused,
                len(pieces),
            )
        return [AppWindowReport.merged(reports) for reports in zip(*parts, strict=True)]

    def window_parts(
        self,
        window: Window,
        shard: Shard = EVERY_ENDPOINT,
        listed: Mapping[str, Sequence[CatalogFile]] | None = None,
    ) -> list[Shard]:
        """The sub-shards of `shard` that `analyse_window` reads one at a time: as few as keep
        each within `analysis_part_endpoints` of the endpoints with events (the keys spread the
        endpoints evenly), at most `MAX_SHARDS` in all. `listed`: the window's live files, when
        the caller listed them (`EventStore.window_files`)."""
        files = self.events.window_files(window) if listed is None else listed
        endpoints = len(shard.part_of(files))
        count = min(-(-endpoints // self.analysis_part_endpoints), MAX_SHARDS // shard.count)
        count = max(count, 1)
        return [Shard(shard.index * count + part, shard.count * count) for part in range(count)]

    def _run_window(
        self,
        apps: Sequence[ModelMonitoringApplicationBase],
        window: Window,
        events: dict[str, pd.DataFrame],
        project_name: str,
        shard: Shard,
        deadlines: dict[str, float] | None = None,
        write: Write | None = None,
        views: Mapping[str, EndpointView] | None = None,
    ) -> list[AppWindowReport]:
        if isinstance(events, WindowEvents):
            events = events.derived(shard.part_of(events))
        else:
            events = shard.part_of(events)
        lookback = silence_lookback(apps)
        traffic = shard.part_of(self.recent_traffic(window, lookback)) if lookback else {}
        return run_apps_on_window(
            apps,
            window,
            events,
            self.endpoints,
            self.results,
            self.artifacts,
            self.references,
            self.invalid_events.counts(window.start, window.end, sorted(set(events) | set(traffic))),
            project_name=project_name,
            recent_traffic=traffic,
            unmatched_labels=self.labels.unmatched_counts(sorted(set(events) | set(traffic))),
            deadlines=deadlines,
            write=write,
            views=views,
        )

    def window_event_counts(self, window: Window) -> dict[str, tuple[int, int]]:
        """(events, errors) per endpoint with events in `window`: from the event catalog when the
        store's slots tile the window (no file is read), else from reading the window."""
        tiled = (window.end - window.start) % self.events.slot_length == timedelta(0)
        if tiled and self.events.slot_of(window.start) == window.start:
            counts = self.catalog.event_counts(window.start, window.end)
            return {
                endpoint_id: counts[endpoint_id] for endpoint_id in sorted(counts) if counts[endpoint_id][0]
            }
        return {
            endpoint_id: (len(df), int(df["error"].notna().sum()))
            for endpoint_id, df in self.events.read_window(window).items()
        }

    def window_report(self, app: str, window: Window) -> AppWindowReport:
        """What the stores hold of `app`'s analysis of `window`, every shard's (see
        `core.stored_report`)."""
        results = self.results.window_results(app, window)
        details = self.results.extra_data_of(app, window, detail_keys(results))
        metrics = self.results.window_metrics(app, window)
        failures = self.results.failures(app, window.start, window.end)
        artifacts = {
            str(a["key"]).removeprefix(f"{app}/"): str(a["uri"])
            for a in self.artifacts.list(app, window_start=window.start)
        }
        names = self.endpoints.names()
        return stored_window_report(app, window, results, metrics, failures, names, artifacts, details)

    def recent_traffic(self, window: Window, lookback: int) -> dict[str, set[Window]]:
        """Per endpoint, which of the `lookback` windows before `window` have its stored events
        (from the arrival log, one query; exact when the event store's slot is the window)."""
        length = window.end - window.start
        spans = self.arrivals.endpoint_spans(
            window.start - length * lookback, window.start, self.events.base_period
        )
        minutes = int(length.total_seconds() // 60)
        return {
            endpoint_id: {w for w in windows_touched(s, minutes) if w.end <= window.start}
            for endpoint_id, s in spans.items()
        }

    def window_coverage(self, start: datetime, end: datetime, base_period: int) -> list[WindowCoverage]:
        """Every window in [start, end) with stored events, and which apps analysed it."""
        slot = self.events.base_period
        counts = window_counts(
            self.arrivals.spans(
                events_from=start, events_before=end, store_base_period=slot, with_labels=False
            ),
            base_period,
        )
        analysed = self.results.analysed_apps(start, end)
        return [
            WindowCoverage(window, events, sorted(analysed.get(window.start, set())))
            for window, events in sorted(counts.items())
            if start <= window.start and window.end <= end
        ]

    def compact_window(
        self, window: Window, shard: Shard = EVERY_ENDPOINT, min_files: int | None = None
    ) -> list[CompactionResult]:
        """Merge `shard`'s part of `window`'s slots into one file each where it holds at least
        `min_files` files (default `events.maintenance.COMPACT_BEFORE_ANALYSIS`). Each shard step
        does it before reading: its read is then one scan per slot, and shards merge their parts
        in parallel."""
        return compact_window(self.events, window, shard, min_files)

    def maintain(
        self, policy: MaintenancePolicy | None = None, now: datetime | None = None
    ) -> MaintenanceReport:
        """Compact closed windows, apply retention, delete retired and leftover files."""
        return maintain(self.events, self.arrivals, policy or MaintenancePolicy(), now or self.clock())

    def write_endpoint_report(
        self,
        endpoint: str,
        *,
        hours: float = 24,
        app: str = "histogram-data-drift",
        thresholds: tuple[float, float] = (0.5, 0.7),
        now: datetime | None = None,
    ) -> str:
        """Render the endpoint page for the `hours` before `now` into the artifacts; returns its
        URI. The file is named after the endpoint and the range (`endpoint-report-<endpoint>-
        <hours>h-to-<end>.html`), so reports of other ranges or times are kept, not overwritten."""
        if not hours > 0:
            raise MonitoringError(f"report hours must be > 0, got {hours}")
        ep = self.get_endpoint(endpoint)
        end = now or self.clock()
        period = timedelta(hours=hours)
        start = end - period
        html = render_endpoint_page(
            ep.name,
            self.results.results(ep.id, app, "general_drift", start, end),
            self.results.results(ep.id, app, "feature_drift", start, end),
            thresholds,
            self.arrivals.event_counts(ep.id, start, end),
            self.arrivals.event_counts(ep.id, start - period, start),
            period,
        )
        uri = self.artifacts.log(
            app,
            f"endpoint-report-{ep.name}-{hours:.10g}h-to-{end:%Y%m%dT%H%M}",
            body=html,
            suffix=".html",
            endpoint_id=ep.id,
        )
        self.artifacts.ensure(app, PLOTLY_JS, plotly_js)
        return uri


def _kept_columns(endpoint: ModelEndpoint, reference: pd.DataFrame) -> list[str]:
    """The reference columns kept in its sample: features, outputs and the task's target."""
    target = [endpoint.task.target] if endpoint.task is not None else []
    return [c for c in [*endpoint.columns, *target] if c in reference.columns]
