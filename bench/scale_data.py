"""Windows of many endpoints for bench/scale.py, built fast through the stores' own APIs.

Endpoints: the first is created by the registry from a reference frame; the others are copies
of its rows (same reference stats, new id and name), inserted in bulk. Events: each endpoint's
window is one validated Arrow table written by `EventStore.write` (the ingestion path's layout),
registered with its arrival rows in one catalog transaction per slot, then compacted by the
maintenance path, as the controller would find a closed window.
"""

import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from common import wide_frame

from mm_dagster.core.windows import Window
from mm_dagster.events.validation import validate_events
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage import database as db

REFERENCE_ROWS = 2000


@dataclass(frozen=True)
class Fleet:
    ids: list[str]
    names: list[str]
    features: int


def create_fleet(mm: Monitoring, endpoints: int, features: int) -> Fleet:
    """`endpoints` endpoints sharing one reference (stats computed once)."""
    reference = wide_frame(REFERENCE_ROWS, numeric=features, categorical=0, seed=1)
    reference["prediction"] = (reference["n0"] > 0).astype(float)
    first = mm.create_endpoint("model-00000", reference=reference, label_names=["prediction"])
    with mm.engine.begin() as conn:
        row = dict(conn.execute(sa.select(db.endpoints).where(db.endpoints.c.id == first.id)).one()._mapping)
        ref = dict(
            conn.execute(
                sa.select(db.endpoint_references).where(db.endpoint_references.c.endpoint_id == first.id)
            )
            .one()
            ._mapping
        )
        ids, names = [first.id], [first.name]
        rows, refs = [], []
        for e in range(1, endpoints):
            endpoint_id, name = uuid.uuid4().hex, f"model-{e:05d}"
            rows.append({**row, "id": endpoint_id, "name": name})
            refs.append({**ref, "endpoint_id": endpoint_id})
            ids.append(endpoint_id)
            names.append(name)
        for lo in range(0, len(rows), 2000):
            conn.execute(db.endpoints.insert(), rows[lo : lo + 2000])
            conn.execute(db.endpoint_references.insert(), refs[lo : lo + 2000])
    return Fleet(ids, names, features)


def write_window(mm: Monitoring, fleet: Fleet, window: Window, events: int, *, shift: float) -> int:
    """Every endpoint's `events` events in `window` (numeric features shifted by `shift` standard
    deviations on every other feature), written as the ingestion path writes them: two files per
    endpoint, not compacted (the window asset compacts them when the window is analysed).
    Returns the number of files written."""
    endpoint = mm.endpoints.get(fleet.ids[0])
    rng = np.random.default_rng(int(window.start.timestamp()))
    offsets = pd.to_timedelta(np.sort(rng.integers(0, 600_000_000, events)), unit="us")
    template = wide_frame(events, numeric=fleet.features, categorical=0, seed=0)
    template["prediction"] = 0.0
    template["timestamp"] = pd.Timestamp(window.start) + offsets
    template["latency_us"] = 1000
    schema_table = validate_events(endpoint, template, pd.Timestamp(window.end) + timedelta(hours=1))
    features = [f"n{i}" for i in range(fleet.features)]
    scales = np.array([1 + i % 3 for i in range(fleet.features)], dtype=np.float64)
    means = np.array([shift * (i % 2) for i in range(fleet.features)], dtype=np.float64)
    written = []
    half = events // 2
    for endpoint_id in fleet.ids:
        values = rng.standard_normal((events, fleet.features)) * scales + means
        columns: dict[str, Any] = {name: schema_table[name] for name in schema_table.column_names}
        for i, f in enumerate(features):
            columns[f] = pa.array(values[:, i])
        columns["prediction"] = pa.array((values[:, 0] > 0).astype(np.float64))
        table = pa.table(columns, schema=schema_table.schema)
        # Two batches per endpoint, as a recorder flushing twice in the window writes them.
        written += mm.events.write(endpoint_id, table.slice(0, half))
        written += mm.events.write(endpoint_id, table.slice(half))
    _register(mm, written)
    return len(written)


def _register(mm: Monitoring, files: list[Any]) -> None:
    now = mm.endpoints.clock()
    with mm.engine.begin() as conn:
        for lo in range(0, len(files), 5000):
            chunk = files[lo : lo + 5000]
            mm.catalog.register(conn, chunk, now)
            conn.execute(
                db.arrivals.insert(),
                [
                    {
                        "slot_start": db.to_db_time(f.slot_start),
                        "endpoint_id": f.endpoint_id,
                        "events": f.events,
                        "errors": f.errors,
                        "first_event": db.to_db_time(f.first_event),
                        "last_event": db.to_db_time(f.last_event),
                        "written_at": db.to_db_time(now),
                    }
                    for f in chunk
                ],
            )
