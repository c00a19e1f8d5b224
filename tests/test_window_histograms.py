"""Per-window histogram counts: stored compactly with the window's results, on every analysed
window, replaced on a re-run, kept apart per segment; apps store their own through the context."""

import dataclasses
import json
import math
import struct
import zlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.applications.drift_histograms import DriftHistograms
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.histograms import CheckedHistogram, FeatureHistogram, PlannedHistogram, WindowSides
from mm_dagster.core.segments import segment_key
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.runner import app_context
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from mm_dagster.stats.drift import feature_drifts
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.reference_codec import CODEC_VERSION, ReferencePlanError, plan_bytes, plan_from_bytes
from mm_dagster.storage import database as db
from mm_dagster.storage.window_histograms import SIDES_MAGIC, WindowHistogramStore, decode, encode, joined

from .conftest import NOW
from .test_segments import frame as segment_frame
from .test_segments import traffic as segment_traffic


def stored_rows(mm: Monitoring) -> list[tuple[str, str, str]]:
    t = db.window_histograms
    with mm.engine.connect() as conn:
        return [
            (r.endpoint_id, r.segment, db.from_db_time(r.window_start).strftime("%H:%M"))
            for r in conn.execute(sa.select(t).order_by(t.c.window_start, t.c.segment))
        ]


def windows(n: int) -> list[Window]:
    end = Window.containing(NOW, 10).start
    return [
        Window(end - timedelta(minutes=10 * (n - i)), end - timedelta(minutes=10 * (n - i - 1)))
        for i in range(n)
    ]


def app_context_for(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> MonitoringApplicationContext:
    events = mm.read_window(window)[endpoint.id]
    return app_context(HistogramDataDriftApplication(), endpoint, window, events, mm.artifacts)


def test_encoding_round_trips_and_is_compact() -> None:
    histograms = [
        FeatureHistogram(
            "f0",
            "numeric",
            ["< min", *(f"{i / 10:.3g}" for i in range(20)), "> max"],
            [0, *range(100, 120), 3],
            [1.0, *range(20), 0.5],
            191,
            {"mean": 1.0, "std": 0.5, "min": -2.0, "max": 4.0},
            {"mean": 1.5, "std": math.nan, "min": -math.inf, "max": 4.0},
        ),
        FeatureHistogram("c0", "categorical", ["web", "(other)", "(unseen)"], [5, 1, 0], [2, 0, 1], 3),
    ]
    data = encode(histograms)
    assert len(data) < 400  # two features, 25 bins: a few hundred bytes
    back = decode(data)
    assert [h.feature for h in back] == ["f0", "c0"]
    assert back[0].window_counts == [1, *range(20), 0.5] and back[0].reference_counts[1] == 100
    assert back[0].labels == histograms[0].labels and back[1].window_rows == 3
    # non-finite summary numbers are stored as null, never as invalid JSON
    assert back[0].window_summary == {"mean": 1.5, "std": None, "min": None, "max": 4.0}


def test_counts_stored_for_every_analysed_window_and_replaced_on_rerun(mm: Monitoring) -> None:
    mm.create_endpoint("fraud", reference=reference_frame(4000, seed=1), label_names=["prediction"])
    ws = windows(3)
    for i, w in enumerate(ws):
        shape = TrafficShape(mean_shift=2.0, drifted_features=2) if i == 2 else TrafficShape()
        mm.record_events("fraud", traffic_frame(300 + i, w.start, w.end, shape, seed=i))
    app = HistogramDataDriftApplication()
    for w in ws:
        mm.run_window([app], w)
    ep = mm.get_endpoint("fraud")
    assert stored_rows(mm) == [(ep.id, "", "11:30"), (ep.id, "", "11:40"), (ep.id, "", "11:50")]
    store = WindowHistogramStore(mm.engine)
    stored = store.window(ep.id, app.name, ws[1].start)
    assert stored is not None and stored.window_end == ws[1].end
    by_feature = {h.feature: h for h in stored.features}
    assert set(by_feature) == {"f0", "f1", "f2", "f3", "c0", "prediction"}
    f0 = by_feature["f0"]
    assert f0.window_rows == 301 and sum(f0.window_counts) == 301  # the window's own rows
    assert sum(f0.reference_counts) == 4000 and len(f0.labels) == len(f0.window_counts)
    assert set(f0.window_summary) == {"mean", "std", "min", "max"} and set(f0.reference_summary) == {
        "mean",
        "std",
        "min",
        "max",
    }
    c0 = by_feature["c0"]
    assert c0.kind == "categorical" and c0.labels[-2:] == ["(other)", "(unseen)"]
    assert c0.window_summary["count"] == 301 and c0.window_summary["top"] in c0.labels

    mm.run_window([app], ws[1])  # a re-run replaces, never duplicates
    assert len(stored_rows(mm)) == 3
    assert store.neighbours(ep.id, app.name, ws[1].start) == (ws[0].start, ws[2].start)
    assert store.neighbours(ep.id, app.name, ws[0].start) == (None, ws[1].start)

    mm.run_window([HistogramDataDriftApplication(drift_report="never")], ws[1])
    assert [r[2] for r in stored_rows(mm)] == ["11:30", "11:50"]  # replaced by nothing
    assert store.window(ep.id, app.name, ws[1].start) is None
    assert store.neighbours(ep.id, app.name, ws[0].start) == (None, ws[2].start)

    mm.delete_endpoint("fraud")
    assert stored_rows(mm) == []


def test_segment_histograms_are_kept_apart(mm: Monitoring) -> None:
    mm.create_endpoint("shop", reference=segment_frame(40_000, seed=1), segment_columns=["country"])
    ep = mm.get_endpoint("shop")
    (w,) = windows(1)
    mm.record_events("shop", segment_traffic(w, 4000, seed=3, de_shift=3.0))
    app = HistogramDataDriftApplication()
    (report,) = mm.run_window([app], w)
    keys = set(report.histograms[ep.id])
    de = segment_key({"country": "DE"})
    assert "" in keys and de in keys and len(keys) > 2
    assert {r[1] for r in stored_rows(mm)} == keys
    store = WindowHistogramStore(mm.engine)
    whole, germany = store.window(ep.id, app.name, w.start), store.window(ep.id, app.name, w.start, de)
    assert whole is not None and germany is not None
    rows = {h.feature: h.window_rows for h in whole.features}
    de_rows = {h.feature: h.window_rows for h in germany.features}
    assert rows["f0"] == 4000 and 0 < de_rows["f0"] < 400  # DE's rows only (5%)
    (de_result,) = mm.results.results(ep.id, app.name, "feature_drift", segment=de)
    assert de_result.extra_data["report"].endswith("&segment=" + "%7B%22country%22%3A%22DE%22%7D")
    mm.run_window([app], w)  # a re-run replaces every segment's row
    assert {r[1] for r in stored_rows(mm)} == keys and len(stored_rows(mm)) == len(keys)


class StoresOwn(ModelMonitoringApplicationBase):
    """A user app that keeps histograms for the window page."""

    def __init__(self, bins: int = 3) -> None:
        self.bins = bins

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        rows = len(monitoring_context.sample_df)
        monitoring_context.store_histograms(
            [
                FeatureHistogram(
                    "score", "numeric", ["low", "mid", "high"], [1, 2, 1], [0, rows, 0][: self.bins], rows
                )
            ]
        )
        return {"rows": float(rows)}


def test_user_apps_store_histograms_through_the_context(mm: Monitoring) -> None:
    mm.create_endpoint("fraud", reference=reference_frame(2000, seed=1))
    (w,) = windows(1)
    mm.record_events("fraud", traffic_frame(50, w.start, w.end, seed=1))
    ep = mm.get_endpoint("fraud")
    (report,) = mm.run_window([StoresOwn()], w)
    assert not report.failures
    stored = WindowHistogramStore(mm.engine).window(ep.id, "stores-own", w.start)
    assert stored is not None and stored.features[0].window_counts == [0, 50, 0]

    (report,) = mm.run_window([StoresOwn(bins=2)], w)  # counts that do not fit the labels
    assert "feature 'score': window_counts has 2 bins, labels 3" in report.failures[ep.id]
    assert WindowHistogramStore(mm.engine).window(ep.id, "stores-own", w.start) is not None  # kept


def test_histograms_are_checked_and_made_plain() -> None:
    given = FeatureHistogram(
        "x",
        "numeric",
        [np.str_("a"), 2],
        np.array([3, 4]),
        [np.float64(0.5), 1],
        np.int64(2),
        {"mean": np.float32(1)},
    )
    plain = given.checked("here")
    assert plain.labels == ["a", "2"] and plain.reference_counts == [3, 4] and plain.window_counts == [0.5, 1]
    assert type(plain.reference_counts[0]) is int and type(plain.window_rows) is int
    assert plain.window_summary == {} and plain.reference_summary == {"mean": 1.0}
    decode(encode([plain]))  # storable
    with pytest.raises(MonitoringError, match="here, feature 'x': reference_counts must be finite and >= 0"):
        FeatureHistogram("x", "numeric", ["a"], [-1], [1], 1).checked("here")
    with pytest.raises(MonitoringError, match="feature 'x': window_counts must hold numbers, got 'many'"):
        FeatureHistogram("x", "numeric", ["a"], [1], ["many"], 1).checked("here")
    with pytest.raises(MonitoringError, match="feature 'x': window_summary: 'top' must be a str, number"):
        FeatureHistogram("x", "numeric", ["a"], [1], [1], 1, {}, {"top": object()}).checked("here")
    with pytest.raises(MonitoringError, match="here: a histogram's feature name must be a non-empty str"):
        FeatureHistogram("", "numeric", ["a"], [1], [1], 1).checked("here")


def test_the_drift_apps_histograms_are_stored_as_checked_ones(mm: Monitoring) -> None:
    """The drift app builds its histograms from checked parts (`CheckedHistogram`, no check per
    window): they equal what `checked` makes of the same fields, and a reference whose counts
    cannot be stored still fails the endpoint, naming the feature."""
    mm.create_endpoint("fraud", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    (w,) = windows(1)
    mm.record_events("fraud", traffic_frame(300, w.start, w.end, seed=3))
    ep = mm.get_endpoint("fraud")
    ctx = app_context_for(mm, ep, w)
    app = HistogramDataDriftApplication()
    app.do_tracking(ctx)
    assert ctx.histograms and all(type(h) is CheckedHistogram for h in ctx.histograms)
    for h in ctx.histograms:
        fields = dataclasses.astuple(h)
        assert dataclasses.astuple(FeatureHistogram(*fields).checked("here")) == fields

    drifts = feature_drifts(ep.feature_stats, ctx.shared_sample_df)
    broken = [replace(d, reference_counts=-d.reference_counts) if d.feature == "f1" else d for d in drifts]
    with pytest.raises(MonitoringError, match="feature 'f1': reference_counts must be finite and >= 0"):
        DriftHistograms().of(ctx, broken)


def _stored_document(mm: Monitoring) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(zlib.decompress(_raw(mm)))
    return document


def test_planned_histograms_store_the_window_side_and_read_back_whole(mm: Monitoring) -> None:
    """A reference with a stored plan: the drift app stores each feature's window side and the
    reference version only; read back, the histograms equal the whole ones made without a plan,
    whatever happened to the reference since (updated; its plan of another codec version)."""
    mm.create_endpoint("fraud", reference=reference_frame(4000, seed=1), label_names=["prediction"])
    (w,) = windows(1)
    mm.record_events("fraud", traffic_frame(300, w.start, w.end, TrafficShape(mean_shift=1.0), seed=3))
    app = HistogramDataDriftApplication()
    mm.run_window([app], w)
    ep = mm.get_endpoint("fraud")

    document = _stored_document(mm)
    assert document["v"] == 2
    assert all(
        set(f) == {"feature", "kind", "window_counts", "window_rows", "window_summary", "reference"}
        for f in document["features"]
    )
    assert {f["reference"] for f in document["features"]} == {1}
    assert all(isinstance(h, PlannedHistogram) and not h.labels for h in decode(_raw(mm)))

    whole_ctx = app_context_for(mm, ep, w)  # no plan: the whole histograms, as before plans
    HistogramDataDriftApplication().do_tracking(whole_ctx)
    whole = [dataclasses.astuple(h) for h in decode(encode(whole_ctx.histograms))]
    store = WindowHistogramStore(mm.engine)

    def read() -> list[tuple[Any, ...]]:
        stored = store.window(ep.id, app.name, w.start)
        assert stored is not None and all(type(h) is FeatureHistogram for h in stored.features)
        return [dataclasses.astuple(h) for h in stored.features]

    assert read() == whole
    c0 = next(h for h in store.window(ep.id, app.name, w.start).features if h.feature == "c0")  # type: ignore[union-attr]
    assert c0.window_summary["top"] in c0.labels and c0.window_summary["count"] == 300

    mm.endpoints.update_reference(ep.id, reference_frame(1000, seed=9))  # version 2
    assert read() == whole  # still the reference the window was compared with
    with mm.engine.begin() as conn:  # version 1's plan as an older codec wrote it
        conn.execute(sa.update(db.reference_plans).where(db.reference_plans.c.version == 1).values(codec=0))
    assert read() == whole  # made again from the stats of version 1, and stored
    with mm.engine.connect() as conn:
        codecs = dict(conn.execute(sa.select(db.reference_plans.c.version, db.reference_plans.c.codec)).all())
    assert codecs == {1: CODEC_VERSION, 2: CODEC_VERSION}
    with mm.engine.begin() as conn:  # version 1's plan damaged since it was stored
        plans = db.reference_plans
        (plan,) = conn.execute(sa.select(plans.c.plan).where(plans.c.version == 1)).one()
        conn.execute(sa.update(plans).where(plans.c.version == 1).values(plan=plan[:-8]))
    assert read() == whole  # made again from the stats, and stored
    with mm.engine.connect() as conn:
        (plan,) = conn.execute(sa.select(plans.c.plan).where(plans.c.version == 1)).one()
    assert list(plan_from_bytes(plan)) == list(ep.feature_stats)


def _raw(mm: Monitoring) -> bytes:
    with mm.engine.connect() as conn:
        (data,) = conn.execute(sa.select(db.window_histograms.c.data)).one()
    return bytes(data)


def test_planned_histograms_without_their_plan_keep_the_window_side() -> None:
    planned = PlannedHistogram("f0", "numeric", (), (), [3, 4], 7, {}, {"mean": 1.0}, reference_version=5)
    category = PlannedHistogram("c0", "categorical", (), (), [1, 5, 0], 6, {}, {}, reference_version=5)
    plans_asked: list[int] = []

    def no_plan(version: int) -> None:
        plans_asked.append(version)

    got = joined(decode(encode([planned, category])), no_plan)
    assert plans_asked == [5]  # once per version
    assert [dataclasses.astuple(h) for h in got] == [
        ("f0", "numeric", ["bin 0", "bin 1"], [0, 0], [3, 4], 7, {}, {"mean": 1.0}),
        (
            "c0",
            "categorical",
            ["bin 0", "bin 1", "bin 2"],
            [0, 0, 0],
            [1, 5, 0],
            6,
            {},
            {"top": "bin 1", "freq": 5, "count": 6},
        ),
    ]


def test_rows_of_format_1_are_read_as_they_are() -> None:
    document = {
        "v": 1,
        "features": [
            {
                "feature": "c0",
                "kind": "categorical",
                "labels": ["web", "(other)", "(unseen)"],
                "reference_counts": [5, 1, 0],
                "window_counts": [2, 0, 1],
                "window_rows": 3,
                "reference_summary": {"top": "web", "freq": 5, "count": 6},
                "window_summary": {"top": "web", "freq": 2, "count": 3},
            }
        ],
    }
    (back,) = decode(zlib.compress(json.dumps(document).encode()))
    assert dataclasses.astuple(back) == tuple(document["features"][0].values())
    with pytest.raises(MonitoringError, match="format 9"):
        decode(zlib.compress(json.dumps({"v": 9, "features": []}).encode()))


def test_a_plan_with_damaged_descriptions_gives_its_counts_and_numbered_bins() -> None:
    stats = compute_feature_stats(reference_frame(500, seed=2)[["f0"]])
    data = plan_bytes(stats)
    header_size, entries_size = struct.unpack_from("<QQ", data, 8)
    described_at = 32 + header_size + entries_size  # after the prefix, the header and the entries
    damaged = data[:described_at] + b"!" + data[described_at + 1 :]
    plan = plan_from_bytes(damaged)  # the header, the entries and the arrays are intact
    with pytest.raises(ReferencePlanError, match="damaged descriptions"):
        _ = plan.described
    bins = len(plan["f0"].reference_counts)
    window = PlannedHistogram(
        "f0", "numeric", (), (), [1] * bins, bins, {}, {"mean": 0.0}, reference_version=1
    )
    (got,) = joined([window], lambda version: plan_from_bytes(damaged))
    assert got.labels == [f"bin {i}" for i in range(bins)]
    assert got.reference_counts == [int(c) for c in stats["f0"]["hist"][0]]
    assert got.reference_summary == {}


def test_a_window_side_is_the_planned_histogram_its_fields_make() -> None:
    made = PlannedHistogram.window_side("f0", "numeric", [3, 4], 7, {"mean": 1.0}, 5)
    whole = PlannedHistogram("f0", "numeric", (), (), [3, 4], 7, {}, {"mean": 1.0}, reference_version=5)
    assert made == whole
    assert dataclasses.asdict(made) == {
        "feature": "f0",
        "kind": "numeric",
        "labels": (),
        "reference_counts": (),
        "window_counts": [3, 4],
        "window_rows": 7,
        "reference_summary": {},
        "window_summary": {"mean": 1.0},
        "reference_version": 5,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.window_rows = 8  # type: ignore[misc]


def _sides() -> WindowSides:
    summaries = [[3, 0.5, 1.0, -1.0, 2.0], [0, 0.0, 0.0, 0.0, 0.0], [15, 1.0, math.inf, -1e308, 1e308]]
    return WindowSides(["a", "b", "c"], np.array([1, 2, 3, 4, 5, 6]), [2, 3, 6], [3, 0, 15], summaries, 4)


def test_window_sides_are_the_planned_histograms_their_arrays_hold() -> None:
    sides = _sides()
    expected = [
        PlannedHistogram.window_side(
            "a", "numeric", [1, 2], 3, {"mean": 0.5, "std": 1.0, "min": -1.0, "max": 2.0}, 4
        ),
        PlannedHistogram.window_side("b", "numeric", [3], 0, {}, 4),  # no finite value: no summary
        PlannedHistogram.window_side(  # a non-finite summary value reads as None, as JSON stores it
            "c", "numeric", [4, 5, 6], 15, {"mean": 1.0, "std": None, "min": -1e308, "max": 1e308}, 4
        ),
    ]
    assert list(sides) == expected and sides == expected and expected == sides
    assert sides[-1] == expected[2] and sides[1:] == expected[1:] and len(sides) == 3
    assert list(sides.select([2, 0])) == [expected[2], expected[0]]
    assert sides.select([1]) == [expected[1]] and sides.select([]) == []
    with pytest.raises(MonitoringError, match="window sides of 2 features do not fit"):
        WindowSides(["a", "b"], np.array([1, 2]), [1, 3], [1, 1], np.zeros((2, 5)), 1)
    with pytest.raises(MonitoringError, match="counts and rows must be >= 0"):
        WindowSides(["a"], np.array([1, -2]), [2], [1], np.zeros((1, 5)), 1)


def test_window_sides_are_stored_as_arrays_and_read_back_as_their_histograms() -> None:
    sides = _sides()
    data = encode(sides)
    assert data.startswith(SIDES_MAGIC) and decode(data) == list(sides)
    # prefix 16, header 55 padded to 56, per feature end, rows and 5 summary values, counts as int32
    assert len(data) == 16 + 56 + 3 * (8 + 8 + 40) + 6 * 4
    wide = WindowSides(["a"], np.array([2**40, 1]), [2], [2**40 + 1], [[2, 0.0, 0.0, 0.0, 1.0]], 1)
    assert decode(encode(wide)) == list(wide)
    with pytest.raises(MonitoringError, match="format 9, not 3"):
        decode(data[:4] + bytes([9]) + data[5:])


def test_the_packed_drift_path_stores_window_sides_that_read_back_whole(mm: Monitoring) -> None:
    """Every feature numeric, read as the window's one float array: the drift app's packed path
    stores each run's window sides as arrays (format 3); read back, they are the whole histograms
    the per-feature path makes without a plan."""
    reference = reference_frame(4000, categorical_features=0, seed=1)
    mm.create_endpoint("fraud", reference=reference, label_names=["prediction"])
    (w,) = windows(1)
    traffic = traffic_frame(300, w.start, w.end, TrafficShape(mean_shift=1.0), categorical_features=0, seed=3)
    traffic.loc[traffic.index[::7], "f1"] = np.nan
    mm.record_events("fraud", traffic)
    app = HistogramDataDriftApplication()
    mm.run_window([app], w)
    ep = mm.get_endpoint("fraud")
    assert _raw(mm).startswith(SIDES_MAGIC)
    whole_ctx = app_context_for(mm, ep, w)
    HistogramDataDriftApplication().do_tracking(whole_ctx)
    whole = [dataclasses.astuple(h) for h in decode(encode(whole_ctx.histograms))]
    stored = WindowHistogramStore(mm.engine).window(ep.id, app.name, w.start)
    assert stored is not None and [dataclasses.astuple(h) for h in stored.features] == whole
    f1 = next(h for h in stored.features if h.feature == "f1")
    assert f1.window_rows == sum(f1.window_counts) == 300 - len(traffic.index[::7])
