"""A reference's drift plan stored as bytes: what `prepare_reference` and the window pages' labels
make of its stats, written once when the reference is stored and read back by every window's run
without parsing the stats' JSON or preparing them again (at 10,000 endpoints x 20 features that
was ~30% of a window's run, profiled).

Layout: `MAGIC`, the codec version (one byte), 3 bytes of padding, the lengths of the header, of
the feature entries and of the descriptions (8 bytes each, little-endian), those three (JSON,
each padded with spaces to a multiple of 8 bytes), then the float64 and the int32 arrays (indexes
into a few thousand bins), each one contiguous block. The header names the features in the
stats' order and those with union bins (`gridded`), says where their packed arrays lie, and
holds the entries' CRC-32; the entries say where each feature's arrays lie in the blocks (start,
length) and its scalars; the descriptions hold each feature's bin labels and reference summary.
Entries and descriptions are parsed only when asked for (a run of the packed path needs
neither). The gridded features' unions, reference histograms, reference drift-bin counts and
totals each lie one after another in the float block, so a plan's unions are one slice (a run
counts a window's values on them in one compiled call that makes each feature's grid in turn,
`union_counts_of_unions`) and its packed reference counts are slices; how their union counts
split into histograms and drift bins (`PackedSplit`) is stored whole, and a gridded feature's
own split is its part of it. No grid is kept (a run bins each endpoint's window once); a
feature's own grid is made when first asked for. Arrays read back are read-only views of the
stored bytes. Codec 5 (codec 4 had no packed counts, int64
indexes and one header holding the entries).
"""

import itertools
import json
import struct
import zlib
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import orjson

from mm_dagster.core.histograms import bin_labels, plain_summary, reference_summary
from mm_dagster.core.json_codec import dumps_bytes
from mm_dagster.stats.category_sketch import CategorySketch
from mm_dagster.stats.feature_stats import NUMERIC, NumericBins
from mm_dagster.stats.reference_plan import (
    FeatureDescription,
    PackedReferenceCounts,
    PreparedFeature,
    PreparedReference,
    prepare_reference,
)
from mm_dagster.stats.union_binning import (
    MAX_TABLE_EDGES,
    PackedGrids,
    PackedSplit,
    UnionGrid,
    packed_grids_of_unions,
)

MAGIC = b"MMRP"
CODEC_VERSION = 5
_PREFIX = struct.Struct("<4sB3xQQQ")
_SPLIT_PARTS = ("histogram_of_union", "drift_of_union", "at_max", "histogram_ends", "drift_ends")


class ReferencePlanError(ValueError):
    """Bytes that are not a plan this codec version reads (stored by another version: prepare
    the reference from its stats instead)."""


class _Block:
    """One block of arrays of `dtype` being written; `add` hands back an array's (start, length)."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.arrays: list[np.ndarray] = []
        self.size = 0

    def add(self, values: np.ndarray) -> list[int]:
        array = np.ascontiguousarray(values, dtype=self.dtype)
        self.arrays.append(array)
        self.size += array.size
        return [self.size - array.size, array.size]


def plan_bytes(reference_stats: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The stored plan of `reference_stats` (see the module docstring)."""
    prepared = prepare_reference(reference_stats)
    floats, ints = _Block("<f8"), _Block("<i4")
    gridded = [
        name
        for name, f in prepared.items()
        if f.bins is not None and f.grid is not None and f.bins.union.size <= MAX_TABLE_EDGES
    ]
    unions = {name: floats.add(prepared[name].bins.union) for name in gridded}  # type: ignore[union-attr]
    counts = {name: floats.add(prepared[name].reference_counts) for name in gridded}
    tests = {name: floats.add(prepared[name].test_reference) for name in gridded}
    totals = floats.add(np.array([prepared[name].reference_total for name in gridded]))
    split = PackedSplit.of([prepared[name].bins for name in gridded])  # type: ignore[misc]
    split_spans = [ints.add(getattr(split, part)) for part in _SPLIT_PARTS]
    features, descriptions = [], []
    for name, feature in prepared.items():
        stats = reference_stats[name]
        descriptions.append(
            [
                bin_labels(stats),
                plain_summary(reference_summary(stats), f"feature {name!r}: reference_summary"),
            ]
        )
        entry: dict[str, Any] = {
            "name": name,
            "kind": feature.kind,
            "counts": counts[name] if name in counts else floats.add(feature.reference_counts),
            "total": feature.reference_total,
        }
        if feature.kind == NUMERIC:
            entry["edges"] = floats.add(feature.edges)  # type: ignore[arg-type]
            entry["std"] = feature.std
        else:
            entry["positions"] = list(feature.positions or {})
            entry["sketch"] = None if feature.sketch is None else feature.sketch.to_json()
        bins = feature.bins
        if bins is not None:
            entry["test"] = tests[name] if name in tests else floats.add(feature.test_reference)
            entry["quantiles"] = floats.add(feature.quantiles)  # type: ignore[arg-type]
            entry["drift_edges"] = floats.add(bins.drift_edges)
            entry["at_max"] = bins.at_max
            if name in unions:  # where its union bins go: its part of the packed split
                entry["packed"] = gridded.index(name)
                entry["union"] = unions[name]
            else:
                entry["union"] = floats.add(bins.union)
                entry["histogram_of_union"] = ints.add(bins.histogram_of_union)
                entry["drift_of_union"] = ints.add(bins.drift_of_union)
        features.append(entry)
    spans = [[unions[n] for n in gridded], [counts[n] for n in gridded], [tests[n] for n in gridded]]
    header_fields = {
        "stats_features": len(reference_stats),
        "names": list(prepared),
        "gridded": gridded,
        "split": split_spans,
        "gridded_spans": [_joined(s) for s in spans] + [totals],
        "union_starts": [0, *np.cumsum([unions[n][1] for n in gridded]).tolist()],
        "floats": floats.size,
        "ints": ints.size,
    }
    entries = padded(dumps_bytes(features))
    described = padded(dumps_bytes(descriptions))
    header = padded(dumps_bytes({**header_fields, "entries_crc32": zlib.crc32(entries)}))
    return b"".join(
        [
            _PREFIX.pack(MAGIC, CODEC_VERSION, len(header), len(entries), len(described)),
            header,
            entries,
            described,
        ]
        + [a.tobytes() for a in floats.arrays]
        + [a.tobytes() for a in ints.arrays]
    )


def _joined(spans: list[list[int]]) -> list[int]:
    """The one span that consecutive `spans` make together."""
    if not spans:
        return [0, 0]
    assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(spans)), "spans not consecutive"
    return [spans[0][0], spans[-1][0] + spans[-1][1] - spans[0][0]]


def padded(text: bytes) -> bytes:
    """`text` padded with spaces to a multiple of 8 bytes (JSON before aligned arrays)."""
    return text + b" " * (-len(text) % 8)


def _json(text: bytes) -> Any:
    """JSON `plan_bytes` wrote: integers it wrote are spans and counts (never the 64-bit ones
    `json_codec.loads` checks for); NaN in a summary makes orjson refuse it."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def plan_from_bytes(data: bytes) -> PreparedReference:
    """The `PreparedReference` a plan holds, with its features' descriptions (`described`) and
    the packed grids of its numeric features (one set, in the stats' order), as `plan_bytes`
    was given; `ReferencePlanError` for bytes of another codec version or none."""
    if len(data) < _PREFIX.size:
        raise ReferencePlanError(f"a reference plan has at least {_PREFIX.size} bytes, got {len(data)}")
    magic, version = data[:4], data[4]
    if magic != MAGIC or version != CODEC_VERSION:
        raise ReferencePlanError(f"not a plan of reference codec {CODEC_VERSION}: {magic!r} {version}")
    try:
        return _plan(data)
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # bytes damaged since written
        raise ReferencePlanError(f"a damaged plan of reference codec {CODEC_VERSION}: {exc!r}") from exc


def _plan(data: bytes) -> PreparedReference:
    _, _, header_size, entries_size, described_size = _PREFIX.unpack_from(data)
    entries_at = _PREFIX.size + header_size
    described_at = entries_at + entries_size
    start = described_at + described_size
    header: dict[str, Any] = _json(data[_PREFIX.size : entries_at])
    floats = np.frombuffer(data, dtype="<f8", count=header["floats"], offset=start)
    ints = np.frombuffer(data, dtype="<i4", count=header["ints"], offset=start + floats.nbytes)
    gridded: tuple[str, ...] = tuple(header["gridded"])
    unions: tuple[np.ndarray, np.ndarray] | None = None
    split: PackedSplit | None = None
    starts: np.ndarray | None = None
    sets: dict[str, Any] = {}
    if gridded:
        (u0, un), (c0, cn), (t0, tn), (s0, sn) = header["gridded_spans"]
        split = PackedSplit(*(ints[i0 : i0 + n] for i0, n in header["split"]))
        starts = np.asarray(header["union_starts"], dtype=np.int64)
        sizes = np.diff(starts)
        if starts[-1] != un or sizes.min() < 1 or sizes.max() > MAX_TABLE_EDGES:  # damaged
            raise ValueError(f"union sizes {sizes.tolist()} do not fit {un} edges")
        unions = (floats[u0 : u0 + un], starts)
        sets = {
            "unions": {gridded: unions},
            "splits": {gridded: split},
            "counts": {
                gridded: PackedReferenceCounts(
                    floats[c0 : c0 + cn],
                    split.histogram_ends,
                    floats[t0 : t0 + tn],
                    split.drift_ends,
                    floats[s0 : s0 + sn],
                )
            },
        }

    def described() -> dict[str, FeatureDescription]:
        try:
            descriptions = _json(data[described_at:start])
            return {
                name: FeatureDescription(labels, summary)
                for name, (labels, summary) in zip(header["names"], descriptions, strict=True)
            }
        except (TypeError, ValueError) as exc:
            raise ReferencePlanError(f"a plan's damaged descriptions: {exc!r}") from exc

    # Checked now, parsed when a feature is first asked for (a run of the packed path never
    # asks): parsing them took ~0.1 ms a plan in a run, and 10,000 plans' parsed entries held
    # ~0.33 GB until the run ended.
    if zlib.crc32(data[entries_at:described_at]) != header["entries_crc32"]:
        raise ValueError("the feature entries do not match their checksum")

    def features() -> dict[str, PreparedFeature]:
        try:
            packed = None if unions is None else packed_grids_of_unions(*unions)
            return _features(
                _json(data[entries_at:described_at]), floats, ints, gridded, packed, split, starts
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ReferencePlanError(f"a damaged plan of reference codec {CODEC_VERSION}: {exc!r}") from exc

    return PreparedReference(
        features,
        names=header["names"],
        gridded=gridded,
        described=described,
        stats_features=int(header["stats_features"]),
        **sets,
    )


def split_part(split: PackedSplit, i: int, union_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feature `i` of a packed split's own `histogram_of_union` and `drift_of_union` (where its
    union bins go in its histogram and drift bins: the split's, less the features' before it)."""
    first, end = union_starts[i] + i, union_starts[i + 1] + i + 1  # a union of n edges: n + 1 bins
    histogram_start = split.histogram_ends[i - 1] if i else 0
    drift_start = split.drift_ends[i - 1] if i else 0
    return (
        split.histogram_of_union[first:end] - histogram_start,
        split.drift_of_union[first:end] - drift_start,
    )


def _features(
    entries: list[dict[str, Any]],
    floats: np.ndarray,
    ints: np.ndarray,
    gridded: tuple[str, ...],
    packed: PackedGrids | None,
    split: PackedSplit | None,
    union_starts: np.ndarray | None,
) -> dict[str, PreparedFeature]:
    """The plan's features from their header entries (made when a run first asks for one)."""
    grids: dict[str, Callable[[], UnionGrid]] = {}
    if packed is not None:
        grids = {name: partial(packed.grid, i) for i, name in enumerate(gridded)}
    features: dict[str, PreparedFeature] = {}
    for f in entries:
        name = f["name"]
        c0, cn = f["counts"]
        counts = floats[c0 : c0 + cn]
        if f["kind"] != NUMERIC:
            sketch = f["sketch"]
            features[name] = PreparedFeature(
                f["kind"],
                counts,
                counts,
                positions={key: i for i, key in enumerate(f["positions"])},
                sketch=None if sketch is None else CategorySketch.from_json(sketch),
                total=f["total"],
            )
            continue
        e0, en = f["edges"]
        edges = floats[e0 : e0 + en]
        if "union" not in f:  # stats from before mass-following bins
            features[name] = PreparedFeature(
                NUMERIC, counts, counts, edges=edges, std=f["std"], total=f["total"]
            )
            continue
        (u0, un), (d0, dn), (t0, tn), (q0, qn) = f["union"], f["drift_edges"], f["test"], f["quantiles"]
        union = floats[u0 : u0 + un]
        if "packed" in f:
            histogram_of_union, drift_of_union = split_part(split, f["packed"], union_starts)  # type: ignore[arg-type]
        else:
            (h0, hn), (o0, on) = f["histogram_of_union"], f["drift_of_union"]
            histogram_of_union, drift_of_union = ints[h0 : h0 + hn], ints[o0 : o0 + on]
        bins = NumericBins(
            edges, floats[d0 : d0 + dn], union, histogram_of_union, drift_of_union, f["at_max"]
        )
        features[name] = PreparedFeature(
            NUMERIC,
            counts,
            floats[t0 : t0 + tn],
            edges=edges,
            bins=bins,
            grid_made=grids.get(name) or partial(UnionGrid.of, union),
            quantiles=floats[q0 : q0 + qn],
            std=f["std"],
            total=f["total"],
        )
    return features
