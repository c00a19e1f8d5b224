"""Windows of many endpoints for bench/scale.py, built fast through the stores' own APIs.

Endpoints: the first is created by the registry from a reference frame; the others are copies
of its rows (same reference stats and stored drift plan, new id and name), inserted in bulk.
Events: stored as the recorder stores them, two drains per window, each holding half of every
endpoint's events as validated Arrow tables stored through `EventIngestor.record_tables` (one
slot file per drain for all endpoints, acknowledged with its arrival rows and counters in one
transaction), not compacted, as the controller would find a closed window.
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
        plan = dict(
            conn.execute(sa.select(db.reference_plans).where(db.reference_plans.c.endpoint_id == first.id))
            .one()
            ._mapping
        )
        ids, names = [first.id], [first.name]
        rows, refs, plans = [], [], []
        for e in range(1, endpoints):
            endpoint_id, name = uuid.uuid4().hex, f"model-{e:05d}"
            rows.append({**row, "id": endpoint_id, "name": name})
            refs.append({**ref, "endpoint_id": endpoint_id})
            plans.append({**plan, "endpoint_id": endpoint_id})
            ids.append(endpoint_id)
            names.append(name)
        for lo in range(0, len(rows), 2000):
            conn.execute(db.endpoints.insert(), rows[lo : lo + 2000])
            conn.execute(db.endpoint_references.insert(), refs[lo : lo + 2000])
            conn.execute(db.reference_plans.insert(), plans[lo : lo + 2000])
    return Fleet(ids, names, features)


def write_window(mm: Monitoring, fleet: Fleet, window: Window, events: int, *, shift: float) -> int:
    """Every endpoint's `events` events in `window` (numeric features shifted by `shift` standard
    deviations on every other feature), stored as a recorder flushing twice in the window stores
    them: two drains, the first with every endpoint's events of the window's first half, the
    second with the rest, each one slot file for all endpoints (`EventIngestor.record_tables`),
    not compacted. Returns the number of files written."""
    endpoint = mm.endpoints.get(fleet.ids[0])
    rng = np.random.default_rng(int(window.start.timestamp()))
    offsets = pd.to_timedelta(np.sort(rng.integers(0, 600_000_000, events)), unit="us")
    template = wide_frame(events, numeric=fleet.features, categorical=0, seed=0)
    template["prediction"] = 0.0
    template["timestamp"] = pd.Timestamp(window.start) + offsets
    template["latency_us"] = 1000
    schema_table = validate_events(endpoint, template, pd.Timestamp(window.end) + timedelta(hours=1))
    half = events // 2
    for lo, hi in ((0, half), (half, events)):
        shared = schema_table.slice(lo, hi - lo)  # timestamps, request ids, latencies, errors
        tables = {
            endpoint_id: _endpoint_events(shared, fleet.features, shift, rng) for endpoint_id in fleet.ids
        }
        mm.ingestor.record_tables(tables, batch_ids={e: uuid.uuid4().hex for e in tables})
    files = mm.catalog.live_files(window.start, window.end)
    return len({f.file for endpoint_files in files.values() for f in endpoint_files})


def _endpoint_events(shared: pa.Table, features: int, shift: float, rng: np.random.Generator) -> pa.Table:
    """`shared`'s rows with an endpoint's own feature values and predictions."""
    scales = np.array([1 + i % 3 for i in range(features)], dtype=np.float64)
    means = np.array([shift * (i % 2) for i in range(features)], dtype=np.float64)
    values = rng.standard_normal((shared.num_rows, features)) * scales + means
    columns: dict[str, Any] = {name: shared[name] for name in shared.column_names}
    for i in range(features):
        columns[f"n{i}"] = pa.array(values[:, i])
    columns["prediction"] = pa.array((values[:, 0] > 0).astype(np.float64))
    return pa.table(columns, schema=shared.schema)
