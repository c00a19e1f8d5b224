"""Per-window histogram counts (`core.histograms.FeatureHistogram`), one compact row per
(endpoint, app, segment, window): zlib-compressed JSON.

Rows are written by `ResultsStore.replace_window` in the transaction that stores the window's
results, with the same replace semantics (a re-run never duplicates); this module encodes them
and reads them back for the window page.
"""

import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.histograms import FeatureHistogram
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.storage import database as db

FORMAT_VERSION = 1


def _summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A summary JSON can hold: non-finite numbers (a constant column's std, say) as null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()}


def encode(histograms: Sequence[FeatureHistogram]) -> bytes:
    try:  # the values are checked plain ones (`FeatureHistogram.checked`): orjson writes them as
        # json does, and non-finite numbers as null, as `_summary` does
        text = orjson.dumps(_document(histograms, lambda summary: summary))
    except TypeError:  # an integer beyond 64 bits, say
        text = json.dumps(_document(histograms, _summary), separators=(",", ":"), allow_nan=False).encode()
    return zlib.compress(text, 1)


def _document(
    histograms: Sequence[FeatureHistogram], summary: Callable[[Mapping[str, Any]], Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION,
        "features": [
            {
                "feature": h.feature,
                "kind": h.kind,
                "labels": h.labels,
                "reference_counts": h.reference_counts,
                "window_counts": h.window_counts,
                "window_rows": int(h.window_rows),
                "reference_summary": summary(h.reference_summary),
                "window_summary": summary(h.window_summary),
            }
            for h in histograms
        ],
    }


def decode(data: bytes) -> list[FeatureHistogram]:
    document = json.loads(zlib.decompress(data))
    if document.get("v") != FORMAT_VERSION:
        raise MonitoringError(
            f"stored window histograms have format {document.get('v')!r}, not {FORMAT_VERSION}"
        )
    return [
        FeatureHistogram(
            f["feature"],
            f["kind"],
            f["labels"],
            f["reference_counts"],
            f["window_counts"],
            f["window_rows"],
            f.get("reference_summary", {}),
            f.get("window_summary", {}),
        )
        for f in document["features"]
    ]


def histogram_rows(
    key: dict[str, Any], histograms: Sequence[FeatureHistogram], now: datetime
) -> list[dict[str, Any]]:
    """The row of one (endpoint, app, segment, window) key (none when there are no histograms);
    `key` may hold other columns (of the results' rows), left out."""
    if not histograms:
        return []
    row = {k: key[k] for k in ("endpoint_id", "app", "segment", "window_start", "window_end")}
    return [{**row, "data": encode(histograms), "updated_at": now}]


@dataclass(frozen=True)
class StoredWindowHistograms:
    endpoint_id: str
    app: str
    segment: str
    window_start: datetime
    window_end: datetime
    features: list[FeatureHistogram]


class WindowHistogramStore:
    """Reads of the stored window histograms (writes go with the results, see module doc)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _where(self, endpoint_id: str, app: str, segment: str) -> sa.ColumnElement[bool]:
        t = db.window_histograms
        return sa.and_(t.c.endpoint_id == endpoint_id, t.c.app == app, t.c.segment == segment)

    def window(
        self, endpoint_id: str, app: str, window_start: datetime, segment: str = ENDPOINT_WIDE
    ) -> StoredWindowHistograms | None:
        """One window's histograms of one endpoint, app and segment (None when none are stored)."""
        t = db.window_histograms
        query = sa.select(t).where(
            self._where(endpoint_id, app, segment), t.c.window_start == db.to_db_time(window_start)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return StoredWindowHistograms(
            m["endpoint_id"],
            m["app"],
            m["segment"],
            db.from_db_time(m["window_start"]),
            db.from_db_time(m["window_end"]),
            decode(m["data"]),
        )

    def neighbours(
        self, endpoint_id: str, app: str, window_start: datetime, segment: str = ENDPOINT_WIDE
    ) -> tuple[datetime | None, datetime | None]:
        """The starts of the stored windows just before and just after `window_start`."""
        t = db.window_histograms
        start = db.to_db_time(window_start)
        where = self._where(endpoint_id, app, segment)
        before = sa.select(sa.func.max(t.c.window_start)).where(where, t.c.window_start < start)
        after = sa.select(sa.func.min(t.c.window_start)).where(where, t.c.window_start > start)
        with self.engine.connect() as conn:
            previous, following = conn.execute(before).scalar(), conn.execute(after).scalar()
        return db.from_db_time(previous), db.from_db_time(following)
