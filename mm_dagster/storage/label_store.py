"""Ground truth (labels) per endpoint and request, in SQL (`mm_labels`).

Why a SQL table and not Parquet beside the events: a label is keyed by (endpoint_id, request_id)
and a later label for the same request replaces the earlier one — an upsert on the primary key,
where append-only Parquet files would need a merge on every read; a batch is all-or-none in one
transaction, together with the arrival rows that re-open the windows of its predictions; and a
window finds its labels through the index on the prediction's time (`event_time`, set when the
label is matched to its event), one query per window for all endpoints. Labels are at most as
many as events and usually far fewer (a sample gets labelled), so the database carries them well.

A label whose prediction is not found yet keeps `event_time` null: it is counted as unmatched
(`summary`, `unmatched_counts`) and matched when its event is stored.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.windows import Window
from mm_dagster.storage import database as db
from mm_dagster.storage.dialect_sql import upsert


@dataclass(frozen=True)
class LabelSummary:
    """An endpoint's stored labels: how many, and how many are not matched to a prediction."""

    endpoint_id: str
    labels: int
    matched: int
    unmatched: int


class LabelStore:
    def __init__(self, engine: Engine, slot_minutes: int, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.slot_minutes = slot_minutes
        self.clock = clock

    def event_times(self, endpoint_id: str, request_ids: Sequence[str]) -> dict[str, datetime]:
        """The prediction times already known for stored labels of these requests."""
        t = db.labels
        found: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for chunk in db.in_chunks(list(request_ids)):
                query = sa.select(t.c.request_id, t.c.event_time).where(
                    t.c.endpoint_id == endpoint_id, t.c.request_id.in_(chunk), t.c.event_time.is_not(None)
                )
                found.update({rid: db.from_db_time(ts) for rid, ts in conn.execute(query)})
        return found

    def pending(self, endpoint_id: str) -> list[str]:
        """Request ids of the endpoint's labels not matched to a prediction yet."""
        t = db.labels
        query = sa.select(t.c.request_id).where(t.c.endpoint_id == endpoint_id, t.c.event_time.is_(None))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def pending_among(self, endpoint_id: str, request_ids: Sequence[str]) -> set[str]:
        """Which of `request_ids` have a label waiting for its prediction (one indexed probe when
        the endpoint has none, the usual case)."""
        t = db.labels
        waiting = (t.c.endpoint_id == endpoint_id, t.c.event_time.is_(None))
        found: set[str] = set()
        with self.engine.connect() as conn:
            if conn.execute(sa.select(t.c.request_id).where(*waiting).limit(1)).first() is None:
                return found
            for chunk in db.in_chunks(list(request_ids)):
                query = sa.select(t.c.request_id).where(*waiting, t.c.request_id.in_(chunk))
                found.update(conn.execute(query).scalars())
        return found

    def _arrival_rows(
        self, endpoint_id: str, event_times: Mapping[str, datetime], now: datetime
    ) -> list[dict[str, object]]:
        """One arrival row per slot of the predictions labelled (`events` 0, `labels` n): the
        controller sees the window's count grow and re-runs it."""
        if not event_times:
            return []
        times = pd.Series(pd.to_datetime(list(event_times.values()), utc=True))
        slots = times.dt.floor(f"{self.slot_minutes}min")
        grouped = times.groupby(slots).agg(["min", "max", "count"])
        return [
            {
                "slot_start": db.to_db_time(slot.to_pydatetime()),
                "endpoint_id": endpoint_id,
                "events": 0,
                "errors": 0,
                "labels": int(row["count"]),
                "first_event": db.to_db_time(row["min"].to_pydatetime()),
                "last_event": db.to_db_time(row["max"].to_pydatetime()),
                "written_at": db.to_db_time(now),
            }
            for slot, row in grouped.iterrows()
        ]

    def record(self, endpoint_id: str, labels: pd.DataFrame, event_times: Mapping[str, datetime]) -> None:
        """Store a validated batch (`request_id`, `value_number`, `value_text`, `label_time`), all
        or none, replacing earlier labels of the same requests. `event_times` are the prediction
        times found for some of them; their windows are re-opened in the same transaction."""
        if labels.empty:
            return
        now = self.clock()
        received = db.to_db_time(now)
        times = {rid: db.to_db_time(ts) for rid, ts in event_times.items()}
        rows = [
            {
                "endpoint_id": endpoint_id,
                "request_id": rid,
                "value_number": None if pd.isna(number) else float(number),
                "value_text": None if pd.isna(text) else str(text),
                "label_time": None if pd.isna(label_time) else db.to_db_time(label_time.to_pydatetime()),
                "event_time": times.get(rid),
                "received_at": received,
            }
            for rid, number, text, label_time in zip(
                labels["request_id"],
                labels["value_number"],
                labels["value_text"],
                labels["label_time"],
                strict=True,
            )
        ]
        arrivals = self._arrival_rows(endpoint_id, event_times, now)
        with self.engine.begin() as conn:
            upsert(conn, db.labels, rows)
            if arrivals:
                conn.execute(db.arrivals.insert(), arrivals)

    def resolve(self, endpoint_id: str, event_times: Mapping[str, datetime], *, reopen: bool) -> int:
        """Match pending labels to the prediction times found for them; with `reopen`, their
        windows are re-opened too (not needed when the predictions just arrived: their own arrival
        re-opens them). Returns how many labels were matched."""
        if not event_times:
            return 0
        t = db.labels
        matched = 0
        arrivals = self._arrival_rows(endpoint_id, event_times, self.clock()) if reopen else []
        with self.engine.begin() as conn:
            for rid, ts in event_times.items():
                matched += int(
                    conn.execute(
                        t.update()
                        .where(
                            t.c.endpoint_id == endpoint_id, t.c.request_id == rid, t.c.event_time.is_(None)
                        )
                        .values(event_time=db.to_db_time(ts))
                    ).rowcount
                )
            if arrivals:
                conn.execute(db.arrivals.insert(), arrivals)
        return matched

    def for_window(
        self, window: Window, endpoint_ids: Sequence[str] | None = None
    ) -> dict[str, pd.DataFrame]:
        """The labels of predictions made in `window`, per endpoint: `request_id`,
        `value_number`, `value_text` (one query for all endpoints)."""
        t = db.labels
        query = sa.select(t.c.endpoint_id, t.c.request_id, t.c.value_number, t.c.value_text).where(
            t.c.event_time >= db.to_db_time(window.start), t.c.event_time < db.to_db_time(window.end)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return {}
        # Column by column, split by endpoint with one sort: far cheaper than row-wise frames.
        owners, request_ids, numbers, texts = (np.array(c, dtype=object) for c in zip(*rows, strict=True))
        order = np.argsort(owners, kind="stable")
        owner_ids, starts = np.unique(owners[order], return_index=True)
        wanted = None if endpoint_ids is None else set(endpoint_ids)
        frames: dict[str, pd.DataFrame] = {}
        for k, endpoint_id in enumerate(owner_ids):
            if wanted is not None and endpoint_id not in wanted:
                continue
            taken = order[starts[k] : starts[k + 1] if k + 1 < len(starts) else len(order)]
            frames[str(endpoint_id)] = pd.DataFrame(
                {
                    "request_id": request_ids[taken],
                    "value_number": numbers[taken].astype(np.float64),
                    "value_text": texts[taken],
                }
            )
        return frames

    def unmatched_counts(self, endpoint_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Labels not matched to a prediction, per endpoint (those with any)."""
        t = db.labels
        query = (
            sa.select(t.c.endpoint_id, sa.func.count())
            .where(t.c.event_time.is_(None))
            .group_by(t.c.endpoint_id)
        )
        with self.engine.connect() as conn:
            counts = {str(e): int(n) for e, n in conn.execute(query)}
        if endpoint_ids is not None:
            wanted = set(endpoint_ids)
            counts = {e: n for e, n in counts.items() if e in wanted}
        return counts

    def summary(self, endpoint_id: str) -> LabelSummary:
        t = db.labels
        query = sa.select(sa.func.count(), sa.func.count(t.c.event_time)).where(
            t.c.endpoint_id == endpoint_id
        )
        with self.engine.connect() as conn:
            total, matched = conn.execute(query).one()
        return LabelSummary(endpoint_id, int(total), int(matched), int(total) - int(matched))

    def labels_of(self, endpoint_id: str) -> pd.DataFrame:
        """Every stored label of the endpoint (for inspection and tests)."""
        t = db.labels
        query = (
            sa.select(
                t.c.request_id,
                t.c.value_number,
                t.c.value_text,
                t.c.label_time,
                t.c.event_time,
                t.c.received_at,
            )
            .where(t.c.endpoint_id == endpoint_id)
            .order_by(t.c.request_id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame(
            rows,
            columns=["request_id", "value_number", "value_text", "label_time", "event_time", "received_at"],
        )
