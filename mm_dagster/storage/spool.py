"""A local, durable, bounded spool of validated event batches that could not reach the store.

Each batch is one Parquet file `<dir>/<endpoint_id>/<batch_id>.parquet`, written atomically, so a
crash leaves whole batches only. Replaying a batch uses its id, so a batch that reached the store
just before a crash is not stored twice.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mm_dagster.storage.files import write_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpooledBatch:
    endpoint_id: str
    batch_id: str
    path: Path

    def read(self) -> pa.Table:
        return pq.read_table(self.path)


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*/*.parquet"))

    def put(self, endpoint_id: str, batch_id: str, table: pa.Table) -> bool:
        """Keep the batch on local disk; False (nothing written) if the spool is full."""
        if self.size_bytes() + table.nbytes > self.max_bytes:
            return False
        path = self.directory / endpoint_id / f"{batch_id}.parquet"
        write_atomically(str(path.absolute()), lambda out: pq.write_table(table, out))
        return True

    def batches(self) -> Iterator[SpooledBatch]:
        """Spooled batches, oldest first."""
        files = sorted(self.directory.glob("*/*.parquet"), key=lambda p: p.stat().st_mtime)
        for path in files:
            yield SpooledBatch(path.parent.name, path.stem, path)

    def remove(self, batch: SpooledBatch) -> None:
        batch.path.unlink(missing_ok=True)

    def pending(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.parquet"))
