"""Per-window histogram counts: stored compactly with the window's results, on every analysed
window, replaced on a re-run, kept apart per segment; apps store their own through the context."""

import dataclasses
import math
from dataclasses import replace
from datetime import timedelta

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
from mm_dagster.core.histograms import CheckedHistogram, FeatureHistogram
from mm_dagster.core.segments import segment_key
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.runner import app_context
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from mm_dagster.stats.drift import feature_drifts
from mm_dagster.storage import database as db
from mm_dagster.storage.window_histograms import WindowHistogramStore, decode, encode

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
