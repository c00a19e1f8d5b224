"""The context an app's `do_tracking` receives: one endpoint, one window; heavy parts lazy."""

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.applications.endpoint_view import EndpointView, MonitoredEndpoint
from mm_dagster.applications.metric_history import EMPTY, MetricHistory
from mm_dagster.core.endpoint import FeatureStats, ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.histograms import FeatureHistogram, WindowSides
from mm_dagster.core.segments import Segment, segment_key, segment_label
from mm_dagster.core.window_events import NumberBlock
from mm_dagster.core.windows import Window
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.reference_plan import PreparedReference
from mm_dagster.storage.artifact_store import ArtifactStore
from mm_dagster.storage.reference_store import ReferenceStore


class KeywordLogger(logging.LoggerAdapter[logging.Logger]):
    """A stdlib logger adapter that accepts keyword context: `logger.info("msg", rows=3)`."""

    _STD = {"exc_info", "stack_info", "stacklevel", "extra"}

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        context = {k: kwargs.pop(k) for k in list(kwargs) if k not in self._STD}
        fields = {**(self.extra or {}), **context}
        suffix = " ".join(f"{k}={v!r}" for k, v in fields.items())
        kwargs["extra"] = {**kwargs.get("extra", {}), "mm_context": fields}
        return (f"{msg} [{suffix}]" if suffix else msg), kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:  # keyword context
        if self.isEnabledFor(level):
            msg, processed = self.process(msg, kwargs)
            self.logger.log(level, msg, *args, **processed)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self.log(logging.ERROR, msg, *args, **kwargs)


def own_view(df: pd.DataFrame) -> pd.DataFrame:
    """A frame an app may change freely without any other app (or the run's cached window) seeing
    it: a shallow copy under pandas copy-on-write, else a deep copy (column arrays copied; Python
    objects in object columns are shared, but strings are immutable)."""
    return df.copy(deep=pd.options.mode.copy_on_write is not True)


class MonitoringApplicationContext:
    """What `do_tracking` receives for one endpoint and one window (MLRun-compatible).

    Each context has its own `sample_df` (copied on first access): what one app changes, no other
    app sees. The reference stats and `model_endpoint` are deep read-only views shared by all apps.
    For a segment run, `segment` names it (`{"country": "DE"}`; None endpoint-wide), `sample_df`
    holds the segment's rows and `feature_stats` (and `reference_df`) the segment's reference.
    """

    def __init__(
        self,
        *,
        application_name: str,
        endpoint: ModelEndpoint | EndpointView,
        window: Window,
        sample_df: pd.DataFrame,
        artifacts: ArtifactStore,
        logger: logging.Logger | None = None,
        references: ReferenceStore | None = None,
        invalid_events: Mapping[str, int] | None = None,
        project_name: str = "default",
        metric_history: MetricHistory | None = None,
        segment: Segment | None = None,
        segment_rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        runs_of_endpoint: int = 1,
        unmatched_labels: int = 0,
        sample_numbers: NumberBlock | None = None,
    ) -> None:
        self._references = references
        self._metric_history = metric_history
        # The segment this run is about (None: the endpoint as a whole) and, for reference_df,
        # how to pick its rows out of a frame.
        self.segment: Segment | None = None if segment is None else dict(segment)
        self.segment_key = segment_key(segment)
        self._segment_rows = segment_rows
        # How many times the app runs on this endpoint in this window (1 + its segments): apps
        # that control false alarms per window share their budget among the runs.
        self.runs_of_endpoint = runs_of_endpoint
        # Labels of this endpoint still waiting for their prediction (all windows).
        self.unmatched_labels = unmatched_labels
        self.project_name = project_name
        if not isinstance(endpoint, EndpointView):
            endpoint = EndpointView(endpoint, project_name)
        self._endpoint = endpoint
        loaded = endpoint.loaded
        # Events of this endpoint and window the recorder could not store, by reason.
        self.invalid_events: dict[str, int] = dict(invalid_events or {})
        self.application_name = application_name
        self.endpoint_id = loaded.id
        self.endpoint_name = loaded.name
        self.feature_names = list(loaded.feature_names)
        self.label_names = list(loaded.label_names)
        self.window = window
        self.start_infer_time = pd.Timestamp(window.start)
        self.end_infer_time = pd.Timestamp(window.end)
        last = loaded.last_request
        # As in MLRun: the time of the endpoint's latest request (None before its first).
        self.latest_request: pd.Timestamp | None = None if last is None else pd.Timestamp(last)
        self._sample_df = sample_df
        self._sample_numbers = None if sample_numbers is None else sample_numbers.of(sample_df)
        self._artifacts = artifacts
        base = logger or logging.getLogger(f"mm_dagster.apps.{application_name}")
        fields: dict[str, object] = {"app": application_name, "endpoint": loaded.name, "window": window.key}
        if segment:
            fields["segment"] = segment_label(segment)
        self.logger = KeywordLogger(base, fields)
        self.artifact_uris: dict[str, str] = {}
        self.histograms: Sequence[FeatureHistogram] = []

    @property
    def model_endpoint(self) -> MonitoredEndpoint:
        """The endpoint, read-only (MLRun's nested attributes too; see `MonitoredEndpoint`)."""
        return self._endpoint.view

    @cached_property
    def sample_df(self) -> pd.DataFrame:
        """The window's events of this endpoint: this app's own view (see `own_view`)."""
        return own_view(self._sample_df)

    @property
    def shared_sample_df(self) -> pd.DataFrame:
        """The window's events of this endpoint, not copied: the frame every app and the run's
        cached window share, so it must never be modified (for apps that only read it)."""
        return self._sample_df

    @property
    def shared_sample_numbers(self) -> NumberBlock | None:
        """The float columns of `shared_sample_df` as one read-only array, when the event store
        read them so (not for a segment's rows or a frame made after the read): for apps that
        take every numeric column at once."""
        return self._sample_numbers

    def metric_history(self, ago: timedelta) -> Mapping[str, float]:
        """This app's stored metrics of this endpoint for the window that started `ago` before
        this one, e.g. `timedelta(weeks=1)` (read-only; empty when none are stored)."""
        if self._metric_history is None:
            return EMPTY
        return self._metric_history.metrics(self.endpoint_id, ago)

    @cached_property
    def labelled_fraction(self) -> float:
        """The share of the window's events with a label (0 without a task or events)."""
        task = self.model_endpoint.task
        if task is None or task.target not in self._sample_df.columns or not len(self._sample_df):
            return 0.0
        return float(self._sample_df[task.target].notna().mean())

    @property
    def reference_key(self) -> tuple[str, int, str]:
        """What identifies the reference this run compares against: (endpoint id, reference
        version, segment key). Apps key what they fit or prepare once per reference by it."""
        return (self.endpoint_id, self._endpoint.loaded.reference_version, self.segment_key)

    @property
    def feature_stats(self) -> FeatureStats:
        """The reference stats (read-only; `copy.deepcopy` gives a mutable copy)."""
        return self.model_endpoint.feature_stats

    @property
    def shared_reference_plan(self) -> PreparedReference | None:
        """The reference stats prepared for drift maths (`stats.reference_plan`), as stored with
        the reference (`stats.reference_codec`): None when none is stored or for a segment's run.
        Shared by every app; never modify it."""
        return self._endpoint.plan

    @property
    def shared_feature_stats(self) -> FeatureStats:
        """The reference stats as loaded, not frozen: shared by every app, so they must never be
        modified (for apps that only read them; `feature_stats` is the read-only view)."""
        return self._endpoint.endpoint.feature_stats

    @staticmethod
    def dict_to_histogram(histogram_dict: FeatureStats) -> pd.DataFrame:
        """MLRun's helper: one column per feature with a histogram, its bin counts divided by the
        feature's `count` (a probability distribution per feature)."""
        histograms = {
            feature: np.array(stats["hist"][0]) / stats["count"]
            for feature, stats in histogram_dict.items()
            if "hist" in stats
        }
        return pd.DataFrame(histograms)

    @cached_property
    def reference_df(self) -> pd.DataFrame | None:
        """The endpoint's stored reference sample (None if it was created without one); for a
        segment run, its rows of the segment."""
        sample = None if self._references is None else self._references.load(self.endpoint_id)
        if sample is None or self._segment_rows is None:
            return sample
        return self._segment_rows(sample)

    @cached_property
    def sample_df_stats(self) -> FeatureStats:
        columns = [c for c in self.model_endpoint.columns if c in self._sample_df.columns]
        return compute_feature_stats(self._sample_df, columns, reference=self.feature_stats)

    def log_artifact(
        self,
        item: str | None = None,
        body: str | bytes | None = None,
        tag: str = "",
        local_path: str | Path = "",
        artifact_path: str | None = None,
        format: str | None = None,
        upload: bool | None = None,
        labels: Mapping[str, str] | None = None,
        target_path: str | None = None,
        unique_per_endpoint: bool = True,
        **kwargs: Any,
    ) -> str:
        """Store an artifact under the app's folder; the same item overwrites. Returns its URI.

        MLRun's signature: `item` is the artifact key (`key=` is accepted too);
        `unique_per_endpoint` (default True, as in MLRun 1.8+) keeps one artifact per endpoint
        (the key gets `-<endpoint id>`). `format` picks the file suffix (e.g. "html"; `suffix=".html"`
        also works); otherwise it comes from `local_path`, or `.txt` / `.bin` for a str / bytes
        body. `tag`, `artifact_path`, `upload`, `labels` and `target_path` are accepted for
        compatibility and not used (artifacts live in the artifacts root, one version per key).
        """
        key = kwargs.pop("key", None)
        if item is not None and key is not None and item != key:
            raise MonitoringError(
                f"app {self.application_name!r}: log_artifact got item {item!r} and key {key!r}"
            )
        key = item if item is not None else key
        if not isinstance(key, str):
            raise MonitoringError(
                f"app {self.application_name!r}: log_artifact needs an item (key), got {key!r}"
            )
        suffix = kwargs.pop("suffix", None)
        if suffix is None and format:
            suffix = f".{format.lstrip('.')}"
        if unique_per_endpoint:
            key = f"{key}-{self._owner}"
        uri = self._artifacts.log(
            self.application_name,
            key,
            body=body,
            local_path=local_path or None,
            suffix=suffix,
            endpoint_id=self.endpoint_id,
            window_start=self.window.start,
        )
        self.artifact_uris[key] = uri
        return uri

    def store_histograms(self, histograms: Iterable[FeatureHistogram]) -> None:
        """Keep per-feature reference and window histograms of this window (and segment) for
        the service's window page (`/endpoints/{name}/windows/{window key}?app=...`), which is
        rendered from them on request. They are stored compactly with this app's results of the
        window, in the same transaction, and replaced with them on a re-run; a later call for the
        same feature replaces its earlier histogram. Counts and summaries may be numpy values;
        raises on histograms that do not fit together (bins of the labels, reference and window
        counts) or hold what cannot be stored. `WindowSides` (a built-in app's, checked as they
        were made) are kept as they are when they are the first histograms stored."""
        if isinstance(histograms, WindowSides) and not self.histograms:
            self.histograms = histograms
            return
        where = f"app {self.application_name!r}, endpoint {self.endpoint_name!r}, window {self.window.key}"
        given = [histogram.checked(where) for histogram in histograms]
        replaced = {h.feature for h in given}
        self.histograms = [*(h for h in self.histograms if h.feature not in replaced), *given]

    @property
    def _owner(self) -> str:
        """What makes a unique-per-endpoint artifact key unique: the endpoint id, and for a
        segment run a short hash of the segment (so segments do not overwrite each other)."""
        if not self.segment_key:
            return self.endpoint_id
        return f"{self.endpoint_id}-s{hashlib.sha256(self.segment_key.encode()).hexdigest()[:10]}"

    @property
    def artifact_directory(self) -> Path:
        """Where this app's artifacts are stored (for files that pages next to them need)."""
        return self._artifacts.app_dir(self.application_name)

    def log_dataset(self, key: str, df: pd.DataFrame, *, unique_per_endpoint: bool = False) -> str:
        if unique_per_endpoint:
            key = f"{key}-{self._owner}"
        uri = self._artifacts.log_dataset(
            self.application_name,
            key,
            df,
            endpoint_id=self.endpoint_id,
            window_start=self.window.start,
        )
        self.artifact_uris[key] = uri
        return uri
