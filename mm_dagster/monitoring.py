"""`Monitoring`: one object that owns the stores of a deployment (spec §4)."""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.windows import Window
from mm_dagster.events.ingest import EventIngestor
from mm_dagster.events.recorder import EventRecorder, monitored
from mm_dagster.runner import run_apps_on_window
from mm_dagster.storage.artifact_store import ArtifactStore
from mm_dagster.storage.database import get_engine
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_store import EventStore
from mm_dagster.storage.reference_store import DEFAULT_SAMPLE_ROWS, ReferenceStore
from mm_dagster.storage.results_store import ResultsStore

DEFAULT_HOME = ".mm_home"


@dataclass(frozen=True)
class StorageSettings:
    """Where things live. Unset fields follow MM_HOME (default `./.mm_home`)."""

    home: str
    database_url: str
    events_root: str
    artifacts_root: str
    partition_minutes: int = 10

    @classmethod
    def resolve(
        cls,
        home: str | None = None,
        database_url: str | None = None,
        events_root: str | None = None,
        artifacts_root: str | None = None,
        partition_minutes: int = 10,
    ) -> "StorageSettings":
        home = str(Path(home or os.environ.get("MM_HOME") or DEFAULT_HOME).absolute())
        return cls(
            home=home,
            database_url=database_url or os.environ.get("MM_DATABASE_URL") or f"sqlite:///{home}/mm.db",
            events_root=events_root or os.environ.get("MM_EVENTS_ROOT") or f"{home}/events",
            artifacts_root=artifacts_root or os.environ.get("MM_ARTIFACTS_ROOT") or f"{home}/artifacts",
            partition_minutes=partition_minutes,
        )


class Monitoring:
    """Endpoints, event recording, app runs and results for one deployment."""

    def __init__(self, settings: StorageSettings | None = None, **overrides: Any) -> None:
        self.settings = settings or StorageSettings.resolve(**overrides)
        self.engine = get_engine(self.settings.database_url)
        self.endpoints = EndpointRegistry(self.engine)
        self.events = EventStore(self.settings.events_root, self.settings.partition_minutes)
        self.ingestor = EventIngestor(self.engine, self.events, self.endpoints)
        self.results = ResultsStore(self.engine)
        self.artifacts = ArtifactStore(self.settings.artifacts_root, self.engine)
        self.references = ReferenceStore(f"{self.settings.home}/references")

    def create_endpoint(
        self, name: str, *, reference_sample_rows: int = DEFAULT_SAMPLE_ROWS, **kwargs: Any
    ) -> ModelEndpoint:
        """Get-or-create an endpoint; a reference frame is summarised into `feature_stats` and a
        sample of it (`reference_sample_rows`, default 100k) is kept for apps like Evidently."""
        endpoint = self.endpoints.create(name, **kwargs)
        reference = kwargs.get("reference")
        if reference is not None and not self.references.path(endpoint.id).exists():
            columns = [c for c in endpoint.columns if c in reference.columns]
            self.references.save(endpoint.id, reference[columns], reference_sample_rows)
        return endpoint

    def get_endpoint(self, name_or_id: str) -> ModelEndpoint:
        return self.endpoints.get(name_or_id)

    def list_endpoints(self) -> list[ModelEndpoint]:
        return self.endpoints.list()

    def delete_endpoint(self, name_or_id: str) -> None:
        self.endpoints.delete(name_or_id)

    def record_events(self, endpoint: str | ModelEndpoint, events: pd.DataFrame) -> int:
        """Store a batch of events (MLRun's `record_results`); all or none."""
        return self.ingestor.record_events(endpoint, events)

    record_results = record_events

    def recorder(self, max_events: int = 1000, max_seconds: float = 5.0) -> EventRecorder:
        return EventRecorder(self.ingestor, max_events=max_events, max_seconds=max_seconds)

    def monitored(
        self, predict: Callable[[Any], Any], endpoint: str, recorder: EventRecorder | None = None
    ) -> Callable[[Any], Any]:
        return monitored(predict, endpoint, recorder or self.recorder())

    def read_window(self, window: Window) -> dict[str, pd.DataFrame]:
        return self.events.read_window(window)

    def run_window(
        self,
        apps: Sequence[ModelMonitoringApplicationBase],
        window: Window,
        events: dict[str, pd.DataFrame] | None = None,
    ) -> list[AppWindowReport]:
        if events is None:
            events = self.read_window(window)
        return run_apps_on_window(
            apps, window, events, self.endpoints, self.results, self.artifacts, self.references
        )
