"""Segments: an endpoint's traffic split by the values of declared columns (e.g. `country`).

The reference decides the segments: its `max_segments` largest value combinations each become
one, every other combination is pooled as `__other__`. A window's rows are mapped the same way,
so a value the reference never had (or had rarely) lands in `__other__`. Results and metrics are
keyed by the segment's key: `""` for the endpoint as a whole, else canonical JSON of
{column: value}.
"""

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.endpoint import FeatureStats
from mm_dagster.core.errors import MonitoringError

OTHER = "__other__"
MAX_SEGMENTS_LIMIT = 1000
MAX_SEGMENT_COLUMNS = 5
ENDPOINT_WIDE = ""
SEGMENT_KEY_CHARS = 255  # the key column's width in the results tables

Segment = dict[str, Any]  # column -> value (str, float, bool or None)


def plain_value(value: object) -> Any:
    """A segment value as JSON can hold it: numpy scalars unwrapped, any missing value None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def segment_key(segment: Mapping[str, Any] | None) -> str:
    """`""` for endpoint-wide, else canonical JSON (sorted columns); over `SEGMENT_KEY_CHARS`
    characters, its start plus a hash of the whole (still unique, no longer parseable)."""
    if not segment:
        return ENDPOINT_WIDE
    key = json.dumps(
        {c: plain_value(v) for c, v in segment.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    if len(key) <= SEGMENT_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: SEGMENT_KEY_CHARS - 17]}#{digest}"


def segment_label(segment: Mapping[str, Any] | str | None) -> str:
    """A readable name: `country=DE`, `country=DE,device=ios`; `""` for endpoint-wide."""
    if isinstance(segment, str):
        if not segment:
            return ""
        try:
            parsed: Mapping[str, Any] = json.loads(segment)
        except ValueError:  # a hashed long key
            return segment
        segment = parsed
    if not segment:
        return ""
    return ",".join(f"{c}={'null' if v is None else v}" for c, v in sorted(segment.items()))


def check_segment_columns(
    endpoint: str, segment_columns: Sequence[str], columns: Sequence[str], max_segments: int
) -> list[str]:
    """The declared segment columns, or an error naming the endpoint and what is wrong."""
    if isinstance(segment_columns, str):
        raise MonitoringError(
            f"endpoint {endpoint!r}: segment_columns must be a list of column names, "
            f"got the string {segment_columns!r}"
        )
    chosen = list(segment_columns)
    unknown = [c for c in chosen if c not in columns]
    if unknown:
        raise MonitoringError(
            f"endpoint {endpoint!r}: segment columns {unknown} are not features or labels "
            f"of the endpoint ({list(columns)})"
        )
    if len(chosen) > MAX_SEGMENT_COLUMNS:
        raise MonitoringError(
            f"endpoint {endpoint!r}: at most {MAX_SEGMENT_COLUMNS} segment columns, got {chosen}"
        )
    if len(set(chosen)) != len(chosen):
        raise MonitoringError(f"endpoint {endpoint!r}: duplicate segment columns {chosen}")
    if isinstance(max_segments, bool) or not isinstance(max_segments, int):
        raise MonitoringError(f"endpoint {endpoint!r}: max_segments must be an int, got {max_segments!r}")
    if not 1 <= max_segments <= MAX_SEGMENTS_LIMIT:
        raise MonitoringError(
            f"endpoint {endpoint!r}: max_segments must be in [1, {MAX_SEGMENTS_LIMIT}], got {max_segments}"
        )
    return chosen


@dataclass(frozen=True)
class SegmentReference:
    """One segment of an endpoint's reference: its values, rows and feature stats."""

    key: str
    segment: Segment
    rows: int
    feature_stats: FeatureStats

    @property
    def is_other(self) -> bool:
        return all(v == OTHER for v in self.segment.values())


def other_segment(columns: Sequence[str]) -> Segment:
    return dict.fromkeys(columns, OTHER)


def _column_values(series: pd.Series) -> np.ndarray:
    """The column as Python objects, every missing value None (as `plain_value` makes them)."""
    values: np.ndarray = series.astype(object).where(series.notna(), None).to_numpy()
    return values


def _codes(frame: pd.DataFrame, columns: Sequence[str], kept: Sequence[Segment]) -> np.ndarray:
    """Per row, the position in `kept` of its segment, or `len(kept)` for `__other__`: each
    column's value is numbered among the kept values of that column, the numbers combined."""
    if not kept:
        return np.zeros(len(frame), dtype=np.int64)
    row_codes = np.zeros(len(frame), dtype=np.int64)
    kept_codes = np.zeros(len(kept), dtype=np.int64)
    radix = 1
    for column in columns:
        kept_values = [plain_value(s[column]) for s in kept]
        index = pd.Index(list(dict.fromkeys(kept_values)), dtype=object)
        rows = index.get_indexer(_column_values(frame[column]))
        rows[rows < 0] = len(index)
        row_codes += rows.astype(np.int64) * radix
        kept_codes += index.get_indexer(kept_values).astype(np.int64) * radix
        radix *= len(index) + 1
    positions = pd.Index(kept_codes).get_indexer(row_codes)
    return np.where(positions < 0, len(kept), positions)


def largest_segments(frame: pd.DataFrame, columns: Sequence[str], max_segments: int) -> list[Segment]:
    """The `max_segments` value combinations of `frame` with the most rows, largest first (ties
    by key, so the choice does not depend on row order)."""
    sizes = frame.groupby(list(columns), dropna=False, sort=False, observed=True).size()
    candidates = []
    for values, rows in sizes.items():
        combo = values if isinstance(values, tuple) else (values,)
        segment = {c: plain_value(v) for c, v in zip(columns, combo, strict=True)}
        candidates.append((-int(rows), segment_key(segment), segment))
    candidates.sort(key=lambda c: (c[0], c[1]))
    return [segment for _, _, segment in candidates[:max_segments]]


def split_by_segment(
    frame: pd.DataFrame, columns: Sequence[str], kept: Sequence[Segment]
) -> list[tuple[Segment, pd.DataFrame]]:
    """`frame`'s rows per kept segment (in `kept`'s order), then the rest as `__other__`;
    segments without rows are left out. Each part has a fresh 0-based index."""
    codes = _codes(frame, columns, kept)
    segments = [*kept, other_segment(columns)]
    order = np.argsort(codes, kind="stable")  # segment by segment, each in its rows' order
    bounds = np.searchsorted(codes[order], np.arange(len(segments) + 1))
    ordered = frame.take(order)  # one gather; each segment is then a slice of it
    parts = []
    for i, segment in enumerate(segments):
        if bounds[i + 1] > bounds[i]:
            parts.append((segment, ordered.iloc[bounds[i] : bounds[i + 1]].reset_index(drop=True)))
    return parts


@dataclass(frozen=True)
class EndpointSegments:
    """An endpoint's segments for one reference version, and how a frame's rows map to them."""

    columns: list[str]
    references: list[SegmentReference]  # largest first; `__other__` last when the reference had a rest

    @property
    def kept(self) -> list[Segment]:
        return [r.segment for r in self.references if not r.is_other]

    def missing_columns(self, frame: pd.DataFrame) -> list[str]:
        return [c for c in self.columns if c not in frame.columns]

    def split(self, frame: pd.DataFrame) -> list[tuple[SegmentReference, pd.DataFrame]]:
        """`frame`'s rows per segment that has rows and a reference; rows of values outside the
        kept ones go to `__other__` (dropped if the reference had no rest to compare them to)."""
        by_key = {r.key: r for r in self.references}
        return [
            (by_key[key], rows)
            for segment, rows in split_by_segment(frame, self.columns, self.kept)
            if (key := segment_key(segment)) in by_key
        ]

    def rows_of(self, frame: pd.DataFrame, key: str) -> pd.DataFrame:
        """`frame`'s rows in the segment with this key (an empty frame if none)."""
        for segment, rows in split_by_segment(frame, self.columns, self.kept):
            if segment_key(segment) == key:
                return rows
        return frame.iloc[:0]
