"""The drift app's packed path (applications.drift_runs, stats.packed_drift) gives what the
feature-by-feature path (stats.drift) gives: the same stored results, metrics and histograms,
exactly, on windows with drift, missing values, columns with no values, outputs, excluded
features, every row-measure method, int weights and thresholds, both binnings and no reports
(one endpoint of each window takes the other path); and the packed pieces agree with their
plain numpy definitions."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.applications import HistogramDataDriftApplication, drift_runs, histogram_drift
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.window_events import numbers_of
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.stats.distances import hellinger, normalise, symmetric_kl, total_variation
from mm_dagster.stats.drift_methods import FeaturePolicy
from mm_dagster.stats.packed_drift import PackedCounts, packed_distances, verdict_statuses
from mm_dagster.storage.window_histograms import WindowHistogramStore

WINDOW = Window.containing("2026-11-20T10:00:00Z", 10)
LATER = datetime(2026, 11, 20, 13, tzinfo=UTC)
FEATURES = [f"x{i}" for i in range(6)]
CATEGORICAL_SEED = 11


def reference(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.normal(i, 1 + i % 3, 600) for i, f in enumerate(FEATURES)})
    frame["prediction"] = (frame["x0"] > 0).astype(float)
    frame["score"] = rng.uniform(size=600)
    if seed == CATEGORICAL_SEED:  # a categorical feature: this endpoint goes feature by feature
        frame["c0"] = rng.choice(["a", "b", "c"], 600)
    return frame


def events(seed: int, rows: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(100 + seed)
    frame = pd.DataFrame(
        {f: rng.normal(i + shift * (i % 2), 1 + i % 3, rows) for i, f in enumerate(FEATURES)}
    )
    frame["prediction"] = (frame["x0"] > shift).astype(float)
    frame["score"] = rng.uniform(size=rows) ** (1 + shift)
    frame.loc[frame.index[:: 3 + seed % 4], "x1"] = np.nan
    if seed % 5 == 0:
        frame["x2"] = np.nan  # a column with no values: left out of the comparison
    if seed % 7 == 0:
        frame.loc[frame.index[::11], "x3"] = np.inf
    if seed == CATEGORICAL_SEED:
        frame["c0"] = rng.choice(["a", "b", "d"], rows)
    start = pd.Timestamp(WINDOW.start)
    frame["timestamp"] = start + pd.to_timedelta(np.linspace(0, 590, rows), unit="s")
    return frame


APPS = {
    "default": lambda: HistogramDataDriftApplication(),
    "policies": lambda: HistogramDataDriftApplication(
        features={
            "x0": FeaturePolicy(method="psi", threshold=0.05, weight=3),
            "x1": FeaturePolicy(exclude=True),
            "x4": FeaturePolicy(method="hellinger", weight=0),
            "prediction": FeaturePolicy(method="jensen_shannon"),
            "score": FeaturePolicy(method="tvd", threshold=1),
        },
        default_method="hellinger",
        effect_size_floor=0.02,
        window_alpha_potential=0.05,
        window_alpha_detected=0.01,
    ),
    "mlrun_binning_no_reports": lambda: HistogramDataDriftApplication(
        mlrun_compatible_binning=True, drift_report="never", min_window_rows=200
    ),
}


def stored(home: Path, app_name: str, packed: bool, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    computed: list[int] = []
    original = histogram_drift.packed_run_drifts

    def counting(runs: Any, *args: Any) -> Any:
        computed.append(len(runs))
        return original(runs, *args)

    with Monitoring(home=str(home), clock=fixed_clock(LATER)) as mm, monkeypatch.context() as patch:
        patch.setattr(histogram_drift, "packed_run_drifts", counting)
        patch.setattr(drift_runs, "RUNS_AT_ONCE", 4)  # the 11 packed runs computed 4, 4 and 3 at once
        names = []
        for seed in range(12):
            name = f"model-{seed}"
            outputs = ["prediction", "score"] if seed % 3 else []
            mm.create_endpoint(name, reference=reference(seed), label_names=outputs)
            mm.record_events(name, events(seed, rows=40 + 37 * seed, shift=0.4 * (seed % 4)))
            names.append(name)
        read = mm.read_window(WINDOW)
        assert all(numbers_of(read, e) is not None for e in read)
        given_events = read if packed else dict(read)  # a plain dict: no blocks, the general path
        mm.run_window([APPS[app_name]()], WINDOW, given_events)
        assert sum(computed) == (11 if packed else 0)  # all but the categorical one
        results = sorted(
            (mm.get_endpoint(r.endpoint_id).name, r.name, r.value, r.status, repr(r.extra_data))
            for r in mm.results.results(app="histogram-data-drift")
        )
        metrics = sorted(
            (mm.get_endpoint(m.endpoint_id).name, m.name, m.value)
            for m in mm.results.metrics(app="histogram-data-drift")
        )
        store = WindowHistogramStore(mm.engine)
        app = "histogram-data-drift"
        histograms = [repr(store.window(mm.get_endpoint(name).id, app, WINDOW.start)) for name in names]
    return [results, metrics, [h.split("features=", 1)[-1] for h in histograms]]


@pytest.mark.parametrize("app_name", sorted(APPS))
def test_the_packed_path_stores_what_the_feature_by_feature_path_stores(
    tmp_path: Path, app_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = stored(tmp_path / "packed", app_name, True, monkeypatch)
    general = stored(tmp_path / "general", app_name, False, monkeypatch)
    results = packed[0]
    assert results and packed == general
    statuses = {status for *_, status, _ in results}
    assert ResultStatusApp.detected in statuses and ResultStatusApp.no_detection in statuses


widths = st.lists(st.integers(1, 9), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(widths, st.integers(0, 2**32 - 1))
def test_packed_counts_and_distances_follow_their_definitions(sizes: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    window = [rng.integers(0, 5, size) * rng.integers(0, 2) for size in sizes]  # some all zero
    reference = [rng.integers(0, 5, size).astype(float) for size in sizes]
    ends = np.cumsum(sizes)
    packed = PackedCounts.of([np.concatenate(window)], [ends])
    assert packed.widths.tolist() == sizes
    padded = packed.padded(np.arange(len(sizes)))
    for i, counts in enumerate(window):
        assert padded[i, : sizes[i]].tolist() == counts.tolist() and not padded[i, sizes[i] :].any()
    assert packed.totals().tolist() == [int(c.sum()) for c in window]
    totals = np.array([r.sum() for r in reference])
    distances = packed_distances(packed, PackedCounts(np.concatenate(reference), packed.widths), totals)
    for i, (t, u) in enumerate(zip(window, reference, strict=True)):
        kept = t.sum() > 0 and u.sum() > 0
        assert distances.kept[i] == kept
        if kept:
            p, q = normalise(t[None, :]), normalise(u[None, :])
            assert distances.tvd[i] == total_variation(p, q)[0]
            assert distances.hellinger[i] == hellinger(p, q)[0]
            assert distances.kld[i] == symmetric_kl(p, q)[0]


def test_statuses_need_a_large_distance_and_a_significant_test() -> None:
    statuses = verdict_statuses(
        np.array([0.3, 0.3, 0.3, 0.05, 0.3]),
        np.full(5, 0.1),
        np.array([1e-6, 1e-3, 0.5, 1e-9, 1e-4]),
        np.full(5, 2e-3),
        np.array([1e-5, 1e-5, 1e-5, 1e-5, 1e-4]),
    )
    assert statuses.tolist() == [2, 1, 0, 0, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 6), max_size=5), min_size=1, max_size=6))
def test_packed_counts_of_parts_keep_each_features_counts(widths_of_parts: list[list[int]]) -> None:
    ends = [np.cumsum(np.asarray(w, dtype=np.int64)) for w in widths_of_parts]
    parts = [np.arange(sum(w), dtype=np.float64) + 100 * k for k, w in enumerate(widths_of_parts)]
    packed = PackedCounts.of(parts, ends)
    assert packed.widths.tolist() == [w for widths in widths_of_parts for w in widths]
    assert packed.widths.dtype == np.int64
    features = [
        part[e - w : e]
        for part, e_, w_ in zip(parts, ends, widths_of_parts, strict=True)
        for e, w in zip(e_, w_, strict=True)
    ]
    for i, expected in enumerate(features):
        start = int(packed.starts[i])
        np.testing.assert_array_equal(packed.values[start : start + int(packed.widths[i])], expected)
