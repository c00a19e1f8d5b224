"""Reference data kept with each endpoint (a bounded sample), for apps that need raw rows."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mm_dagster.core.errors import MonitoringError
from mm_dagster.storage.files import StorageRoot

DEFAULT_SAMPLE_ROWS = 100_000


class ReferenceStore:
    """`<root>/<endpoint_id>.parquet`, written whole when the endpoint is created or its
    reference replaced; the root is a local path or an object storage URI (`s3://bucket/refs`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = StorageRoot.parse(root)

    def location(self, endpoint_id: str) -> str:
        """The sample's path on the root's filesystem."""
        return self.root.join(f"{endpoint_id}.parquet")

    def uri(self, endpoint_id: str) -> str:
        return self.root.uri(self.location(endpoint_id))

    def save(self, endpoint_id: str, reference: pd.DataFrame, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> str:
        """Store a sample of at most `sample_rows` rows of `reference`; returns its URI."""
        if sample_rows < 1:
            raise MonitoringError(f"reference sample_rows must be >= 1, got {sample_rows}")
        sample = reference.sample(sample_rows, random_state=0) if len(reference) > sample_rows else reference
        table = pa.Table.from_pandas(sample.reset_index(drop=True), preserve_index=False)
        self.root.write_whole(self.location(endpoint_id), lambda out: pq.write_table(table, out))
        return self.uri(endpoint_id)

    def load(self, endpoint_id: str) -> pd.DataFrame | None:
        location = self.location(endpoint_id)
        if not self.root.exists(location):
            return None
        return pd.read_parquet(location, filesystem=self.root.fs)

    def columns(self, endpoint_id: str) -> list[str]:
        """The columns of the stored sample (none stored: empty), read from its schema alone."""
        location = self.location(endpoint_id)
        if not self.root.exists(location):
            return []
        return list(pq.read_schema(location, filesystem=self.root.fs).names)
