"""The context an app's `do_tracking` receives: one endpoint, one window; heavy parts lazy."""

import logging
from collections.abc import Mapping, MutableMapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from mm_dagster.core.endpoint import FeatureStats, ModelEndpoint
from mm_dagster.core.windows import Window
from mm_dagster.stats.feature_stats import compute_feature_stats
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


class MonitoringApplicationContext:
    def __init__(
        self,
        *,
        application_name: str,
        endpoint: ModelEndpoint,
        window: Window,
        sample_df: pd.DataFrame,
        artifacts: ArtifactStore,
        logger: logging.Logger | None = None,
        references: ReferenceStore | None = None,
        invalid_events: Mapping[str, int] | None = None,
    ) -> None:
        self._references = references
        # Events of this endpoint and window the recorder could not store, by reason.
        self.invalid_events: dict[str, int] = dict(invalid_events or {})
        self.application_name = application_name
        self.model_endpoint = endpoint
        self.endpoint_id = endpoint.id
        self.endpoint_name = endpoint.name
        self.feature_names = list(endpoint.feature_names)
        self.label_names = list(endpoint.label_names)
        self.window = window
        self.start_infer_time = pd.Timestamp(window.start)
        self.end_infer_time = pd.Timestamp(window.end)
        self._sample_df = sample_df
        self._artifacts = artifacts
        base = logger or logging.getLogger(f"mm_dagster.apps.{application_name}")
        self.logger = KeywordLogger(
            base, {"app": application_name, "endpoint": endpoint.name, "window": window.key}
        )
        self.artifact_uris: dict[str, str] = {}

    @property
    def sample_df(self) -> pd.DataFrame:
        return self._sample_df

    @property
    def feature_stats(self) -> FeatureStats:
        return self.model_endpoint.feature_stats

    @cached_property
    def reference_df(self) -> pd.DataFrame | None:
        """The endpoint's stored reference sample (None if it was created without one)."""
        return None if self._references is None else self._references.load(self.endpoint_id)

    @cached_property
    def sample_df_stats(self) -> FeatureStats:
        columns = [c for c in self.model_endpoint.columns if c in self._sample_df.columns]
        return compute_feature_stats(self._sample_df, columns, reference=self.feature_stats)

    def log_artifact(
        self,
        key: str,
        body: str | bytes | None = None,
        local_path: str | Path | None = None,
        *,
        unique_per_endpoint: bool = False,
        suffix: str | None = None,
        **_: Any,
    ) -> str:
        """Store an artifact; the same key overwrites. Returns its URI."""
        if unique_per_endpoint:
            key = f"{key}-{self.endpoint_id}"
        uri = self._artifacts.log(
            self.application_name,
            key,
            body=body,
            local_path=local_path,
            suffix=suffix,
            endpoint_id=self.endpoint_id,
            window_start=self.window.start,
        )
        self.artifact_uris[key] = uri
        return uri

    @property
    def artifact_directory(self) -> Path:
        """Where this app's artifacts are stored (for files that pages next to them need)."""
        return self._artifacts.app_dir(self.application_name)

    def log_dataset(self, key: str, df: pd.DataFrame, *, unique_per_endpoint: bool = False) -> str:
        if unique_per_endpoint:
            key = f"{key}-{self.endpoint_id}"
        uri = self._artifacts.log_dataset(
            self.application_name,
            key,
            df,
            endpoint_id=self.endpoint_id,
            window_start=self.window.start,
        )
        self.artifact_uris[key] = uri
        return uri
