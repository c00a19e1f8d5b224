"""Evidently 0.7 integration (MLRun's `EvidentlyModelMonitoringApplicationBase`), without the
memory growth: snapshots are appended to the Evidently workspace as files, and the workspace is
never opened (Evidently's local `Workspace` can load every stored snapshot when it is opened).

Evidently is imported here only; `mm_dagster.applications` loads this module on first use.
"""

import importlib.metadata
import uuid
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric

SUPPORTED_EVIDENTLY_VERSION = "0.7.23"
DEFAULT_SAMPLE_ROWS = 20_000


def _check_version() -> str:
    version = importlib.metadata.version("evidently")
    if not version.startswith("0.7."):
        warnings.warn(
            f"evidently {version} is installed; mm_dagster supports {SUPPORTED_EVIDENTLY_VERSION} (0.7.x)",
            stacklevel=3,
        )
    return version


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class SnapshotSink:
    """Appends snapshots to a local Evidently workspace (`evidently ui --workspace PATH` reads it)."""

    def __init__(self, workspace_path: str | Path, project_id: str | uuid.UUID, project_name: str) -> None:
        from evidently.sdk.models import ProjectModel
        from evidently.ui.storage.local.base import LocalState

        self.state = LocalState(str(workspace_path))
        self.project_id = uuid.UUID(str(project_id))
        if not Path(workspace_path, str(self.project_id), "metadata.json").exists():
            self.state.write_project(ProjectModel(id=self.project_id, name=project_name))

    def add(self, snapshot: Any) -> str:
        snapshot_id = uuid.uuid4()
        self.state.write_snapshot(self.project_id, snapshot_id, snapshot.to_snapshot_model())
        return str(snapshot_id)


class EvidentlyModelMonitoringApplicationBase(ModelMonitoringApplicationBase):
    """Base for apps that run Evidently reports on each window against the endpoint's reference.

    Subclasses implement `do_tracking` with the helpers: `run_report` (bounded samples of the
    window and the stored reference), `log_evidently_report` (the report's HTML as an artifact),
    `add_snapshot` (into the Evidently workspace without opening it) and `metric_values`
    (Evidently values by metric name, to turn into results and metrics). MLRun's API is there too:
    `evidently_workspace` / `evidently_project` (opened on first use), `get_workspace()`,
    `load_project()` and the static `log_evidently_object(context, run, artifact_name)`.
    """

    def __init__(
        self,
        evidently_project_id: str | uuid.UUID,
        evidently_workspace_path: str | Path | None = None,
        cloud_workspace: bool = False,
        *,
        sample_rows: int = DEFAULT_SAMPLE_ROWS,
        seed: int = 0,
    ) -> None:
        """MLRun's order: `evidently_project_id`, then `evidently_workspace_path` (a local
        directory; Evidently Cloud is not supported). The workspace and project are opened only
        when `evidently_workspace` / `evidently_project` are first used."""
        self.evidently_version = _check_version()
        if not _is_uuid(evidently_project_id) and _is_uuid(evidently_workspace_path):
            # mm_dagster's former order (workspace path first): still accepted.
            warnings.warn(
                f"app {self.name!r}: pass evidently_project_id first (MLRun's order), then "
                "evidently_workspace_path",
                DeprecationWarning,
                stacklevel=2,
            )
            evidently_project_id, evidently_workspace_path = (
                str(evidently_workspace_path),
                evidently_project_id,
            )
        if not _is_uuid(evidently_project_id):
            raise MonitoringError(
                f"app {self.name!r}: evidently_project_id {evidently_project_id!r} is not a UUID"
            )
        if cloud_workspace:
            raise MonitoringError(f"app {self.name!r}: Evidently Cloud workspaces are not supported")
        if evidently_workspace_path is None:
            raise MonitoringError(f"app {self.name!r}: evidently_workspace_path is required")
        if sample_rows < 1:
            raise MonitoringError(f"app {self.name!r}: sample_rows must be >= 1, got {sample_rows}")
        self.evidently_workspace_path = str(evidently_workspace_path)
        self.evidently_project_id: str | uuid.UUID = evidently_project_id
        self.cloud_workspace = cloud_workspace
        self.sample_rows = sample_rows
        self.seed = seed
        self._sink: SnapshotSink | None = None

    # -- MLRun's workspace API (opened lazily: `add_snapshot` never opens the workspace) ------
    @cached_property
    def evidently_workspace(self) -> Any:
        """The Evidently workspace (opened on first use; see `add_snapshot` for the bounded path)."""
        return self.get_workspace()

    @cached_property
    def evidently_project(self) -> Any:
        """The Evidently project (`None` if the workspace has none with this id yet)."""
        return self.load_project()

    def get_workspace(self) -> Any:
        from evidently.ui.workspace import Workspace

        return Workspace.create(self.evidently_workspace_path)

    def load_project(self) -> Any:
        return self.evidently_workspace.get_project(self.evidently_project_id)

    @staticmethod
    def log_evidently_object(
        monitoring_context: MonitoringApplicationContext,
        evidently_object: Any,
        artifact_name: str,
        unique_per_endpoint: bool = True,
    ) -> str:
        """Log an Evidently run (a `Snapshot`, e.g. a report's run) as an HTML artifact; returns
        its URI. As MLRun warns, call it on special occasions, not on every window."""
        return monitoring_context.log_artifact(
            artifact_name,
            body=evidently_object.get_html_str(as_iframe=False).encode("utf-8"),
            format="html",
            unique_per_endpoint=unique_per_endpoint,
        )

    # -- helpers for do_tracking ----------------------------------------------------------------
    def _sample(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.sample(self.sample_rows, random_state=self.seed) if len(df) > self.sample_rows else df

    def reference_data(self, context: MonitoringApplicationContext) -> pd.DataFrame:
        reference = context.reference_df
        if reference is None or reference.empty:
            raise MonitoringError(
                f"app {self.name!r}, endpoint {context.endpoint_name!r}: no reference data stored "
                "(create the endpoint with a reference frame)"
            )
        return reference

    def run_report(
        self,
        context: MonitoringApplicationContext,
        metrics: Sequence[Any],
        columns: Sequence[str] | None = None,
    ) -> Any:
        """Run an Evidently `Report` of `metrics` on samples of the window and the reference."""
        from evidently import DataDefinition, Dataset, Report

        reference = self.reference_data(context)
        columns = [c for c in (columns or context.feature_names) if c in reference.columns]
        kinds = context.model_endpoint.column_types
        definition = DataDefinition(
            numerical_columns=[c for c in columns if kinds.get(c) == "float64"],
            categorical_columns=[c for c in columns if kinds.get(c) != "float64"],
        )
        current = self._sample(context.sample_df[columns])
        current = current.astype({c: object for c in columns if kinds.get(c) != "float64"})
        ref = self._sample(reference[columns])
        return Report(list(metrics)).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )

    def log_evidently_report(
        self,
        context: MonitoringApplicationContext,
        snapshot: Any,
        key: str = "evidently-report",
        unique_per_endpoint: bool = True,
    ) -> str:
        """Store the report's HTML as an artifact (same key overwrites); returns its URI."""
        return self.log_evidently_object(context, snapshot, key, unique_per_endpoint)

    def add_snapshot(self, context: MonitoringApplicationContext, snapshot: Any) -> str:
        """Append the snapshot to the Evidently workspace without opening it; returns its id."""
        if self._sink is None:
            self._sink = SnapshotSink(
                self.evidently_workspace_path, self.evidently_project_id, f"mm_dagster {self.name}"
            )
        snapshot.set_name(f"{context.endpoint_name} {context.window.key}")
        return self._sink.add(snapshot)

    @staticmethod
    def metric_values(snapshot: Any) -> dict[str, Any]:
        """Evidently values by metric name, e.g. `DriftedColumnsCount(...)`: {count, share}."""
        return {m["metric_name"]: m["value"] for m in snapshot.dict()["metrics"]}

    @staticmethod
    def as_metrics(values: dict[str, float], prefix: str = "") -> list[ModelMonitoringApplicationMetric]:
        return [ModelMonitoringApplicationMetric(f"{prefix}{k}", float(v)) for k, v in values.items()]
