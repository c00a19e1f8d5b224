"""Per-window histogram counts (`core.histograms.FeatureHistogram`), one compact row per
(endpoint, app, segment, window): zlib-compressed JSON. A `PlannedHistogram` (a built-in app's,
on a reference with a stored plan) is stored as its window side and the reference version; its
labels, reference counts and summary are joined from that version's plan when read (format 2;
rows of format 1 hold every histogram whole and are read as they are). A run's `WindowSides` (the
built-in app's packed path) are stored as their arrays (format 3, not compressed: ~3 KB for 20
features) and read back as the `PlannedHistogram`s they stand for.

Rows are written by `ResultsStore.replace_window` in the transaction that stores the window's
results, with the same replace semantics (a re-run never duplicates); this module encodes them
and reads them back for the window page.
"""

import json
import math
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.histograms import (
    NUMERIC,
    FeatureHistogram,
    PlannedHistogram,
    WindowSides,
    counts_list,
    numbered_bins,
    top_bucket,
)
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.stats.reference_codec import ReferencePlanError, padded
from mm_dagster.stats.reference_plan import PreparedReference
from mm_dagster.storage import database as db
from mm_dagster.storage.endpoint_registry import EndpointRegistry

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
SIDES_MAGIC = b"MMWS"  # format 3: `WindowSides` as arrays (a zlib stream never starts so)
SIDES_VERSION = 3
_SIDES_PREFIX = struct.Struct("<4sB3xI4x")
_INT32_MAX = 2**31 - 1


def _summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A summary JSON can hold: non-finite numbers (a constant column's std, say) as null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()}


def encode(histograms: Sequence[FeatureHistogram]) -> bytes:
    if isinstance(histograms, WindowSides):
        return _encode_sides(histograms)
    try:  # the values are checked plain ones (`FeatureHistogram.checked`): orjson writes them as
        # json does, and non-finite numbers as null, as `_summary` does
        text = orjson.dumps(_document(histograms, lambda summary: summary))
    except TypeError:  # an integer beyond 64 bits, say
        text = json.dumps(_document(histograms, _summary), separators=(",", ":"), allow_nan=False).encode()
    return zlib.compress(text, 1)


def _document(
    histograms: Sequence[FeatureHistogram], summary: Callable[[Mapping[str, Any]], Mapping[str, Any]]
) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    for h in histograms:
        entry = {
            "feature": h.feature,
            "kind": h.kind,
            "window_counts": h.window_counts,
            "window_rows": int(h.window_rows),
            "window_summary": summary(h.window_summary),
        }
        if isinstance(h, PlannedHistogram):
            entry["reference"] = h.reference_version
        else:
            entry["labels"] = h.labels
            entry["reference_counts"] = h.reference_counts
            entry["reference_summary"] = summary(h.reference_summary)
        features.append(entry)
    return {"v": FORMAT_VERSION, "features": features}


def _encode_sides(sides: WindowSides) -> bytes:
    """Format 3: the prefix (magic, version, the header's length), the header (JSON: the
    reference version, the features, the counts' type) padded to 8 bytes, then the arrays: each
    feature's counts' end, rows and summary row, and the counts (int32 when they fit)."""
    counts = sides.counts
    narrow = not counts.size or int(counts.max()) <= _INT32_MAX
    counts_type = "<i4" if narrow else "<i8"
    fields = {"reference": sides.reference_version, "features": sides.features, "counts": counts_type}
    header = padded(orjson.dumps(fields))
    return b"".join(
        [
            _SIDES_PREFIX.pack(SIDES_MAGIC, SIDES_VERSION, len(header)),
            header,
            sides.ends.astype("<i8").tobytes(),
            sides.rows.astype("<i8").tobytes(),
            sides.summaries.astype("<f8").tobytes(),
            counts.astype(counts_type).tobytes(),
        ]
    )


def _decode_sides(data: bytes) -> WindowSides:
    _, version, header_size = _SIDES_PREFIX.unpack_from(data)
    if version != SIDES_VERSION:
        raise MonitoringError(f"stored window histograms have format {version}, not {SIDES_VERSION}")
    at = _SIDES_PREFIX.size + header_size
    header = orjson.loads(data[_SIDES_PREFIX.size : at])
    n = len(header["features"])
    ends = np.frombuffer(data, "<i8", n, at)
    rows = np.frombuffer(data, "<i8", n, at + 8 * n)
    summaries = np.frombuffer(data, "<f8", 5 * n, at + 16 * n).reshape(n, 5)
    counts = np.frombuffer(data, header["counts"], offset=at + 56 * n)
    return WindowSides(header["features"], counts, ends, rows, summaries, header["reference"])


def decode(data: bytes) -> list[FeatureHistogram]:
    """The stored histograms, a `PlannedHistogram` (window side only) for each stored so
    (`joined` gives them their reference side)."""
    if data[: len(SIDES_MAGIC)] == SIDES_MAGIC:
        return list(_decode_sides(data))
    document = json.loads(zlib.decompress(data))
    if document.get("v") not in READABLE_VERSIONS:
        raise MonitoringError(
            f"stored window histograms have format {document.get('v')!r}, not one of {READABLE_VERSIONS}"
        )
    return [
        PlannedHistogram.window_side(
            f["feature"],
            f["kind"],
            f["window_counts"],
            f["window_rows"],
            f.get("window_summary", {}),
            f["reference"],
        )
        if "reference" in f
        else FeatureHistogram(
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


def joined(
    histograms: Sequence[FeatureHistogram], plan_of: Callable[[int], PreparedReference | None]
) -> list[FeatureHistogram]:
    """`histograms` with each `PlannedHistogram` made whole from the plan of its reference version
    (`plan_of`, asked once per version). Bins the plan does not describe are labelled by number;
    a feature the plan lacks (its reference gone) keeps its window side, reference counts 0."""
    plans: dict[int, PreparedReference | None] = {}
    whole: list[FeatureHistogram] = []
    for h in histograms:
        if not isinstance(h, PlannedHistogram):
            whole.append(h)
            continue
        if h.reference_version not in plans:
            plans[h.reference_version] = plan_of(h.reference_version)
        plan = plans[h.reference_version]
        bins = len(h.window_counts)
        labels: Sequence[str] = []
        reference_counts: list[float] = [0] * bins
        reference_summary: Mapping[str, Any] = {}
        if plan is not None and h.feature in plan:
            counts = counts_list(plan[h.feature].reference_counts)
            if len(counts) == bins:
                reference_counts = counts
                try:
                    description = (plan.described or {}).get(h.feature)
                except ReferencePlanError:  # its labels and summaries damaged: bins by number
                    description = None
                if description is not None:
                    labels, reference_summary = description.labels, description.summary
        if len(labels) != bins:
            labels = numbered_bins(bins)
        window_summary = h.window_summary
        if h.kind != NUMERIC and not window_summary:
            window_summary = top_bucket(labels, h.window_counts)
        whole.append(
            FeatureHistogram(
                h.feature,
                h.kind,
                labels,
                reference_counts,
                h.window_counts,
                h.window_rows,
                reference_summary,
                window_summary,
            )
        )
    return whole


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
        self._plans = EndpointRegistry(engine)

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
            joined(decode(m["data"]), lambda version: self._plans.reference_plan(endpoint_id, version)),
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
