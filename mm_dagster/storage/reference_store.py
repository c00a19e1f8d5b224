"""Reference data kept with each endpoint (a bounded sample), for apps that need raw rows."""

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from mm_dagster.core.errors import MonitoringError
from mm_dagster.storage.files import write_atomically

DEFAULT_SAMPLE_ROWS = 100_000


class ReferenceStore:
    """`<root>/<endpoint_id>.parquet`, written once when the endpoint is created."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, endpoint_id: str) -> Path:
        return self.root / f"{endpoint_id}.parquet"

    def save(self, endpoint_id: str, reference: pd.DataFrame, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> Path:
        if sample_rows < 1:
            raise MonitoringError(f"reference sample_rows must be >= 1, got {sample_rows}")
        sample = reference.sample(sample_rows, random_state=0) if len(reference) > sample_rows else reference
        path = self.path(endpoint_id)
        write_atomically(
            str(path.absolute()), lambda temp: sample.reset_index(drop=True).to_parquet(temp, index=False)
        )
        return path

    def load(self, endpoint_id: str) -> pd.DataFrame | None:
        path = self.path(endpoint_id)
        return pd.read_parquet(path) if path.exists() else None

    def columns(self, endpoint_id: str) -> list[str]:
        """The columns of the stored sample (none stored: empty), read from its schema alone."""
        path = self.path(endpoint_id)
        return list(pq.read_schema(path).names) if path.exists() else []
