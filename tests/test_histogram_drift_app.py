import logging
import tempfile

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import normalise_outputs
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.stats.distances import normalise, total_variation
from mm_dagster.stats.drift import FeatureDrift, feature_drifts, feature_verdict
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.null_thresholds import NullThresholdCache, size_bucket
from mm_dagster.storage.artifact_store import ArtifactStore
from mm_dagster.storage.database import create_engine

from .conftest import past_window


def make_endpoint(reference: pd.DataFrame) -> ModelEndpoint:
    return ModelEndpoint(
        id="0" * 32,
        name="ep",
        feature_names=list(reference.columns),
        label_names=[],
        column_types={},
        feature_stats=compute_feature_stats(reference),
    )


def scratch_artifacts() -> ArtifactStore:
    return ArtifactStore(tempfile.mkdtemp(prefix="mm-artifacts-"), create_engine("sqlite://"))


def run_app(app: HistogramDataDriftApplication, reference: pd.DataFrame, window: pd.DataFrame):  # type: ignore[no-untyped-def]
    ctx = MonitoringApplicationContext(
        application_name=app.name,
        endpoint=make_endpoint(reference),
        window=past_window(),
        sample_df=window,
        artifacts=scratch_artifacts(),
    )
    results, metrics = normalise_outputs(app.do_tracking(ctx))
    return {r.name: r for r in results}, {m.name: m.value for m in metrics}


def test_mlrun_compatible_outputs() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.uniform(size=2000)})
    window = pd.DataFrame({"a": rng.normal(1.5, size=500), "b": rng.uniform(size=500)})
    results, metrics = run_app(HistogramDataDriftApplication(), reference, window)
    assert set(metrics) == {"hellinger_mean", "kld_mean", "tvd_mean"}
    general = results["general_drift"]
    assert general.kind == ResultKindApp.data_drift
    assert general.value == pytest.approx((metrics["hellinger_mean"] + metrics["tvd_mean"]) / 2)
    assert set(general.extra_data["features"]) == {"a", "b"}
    assert set(general.extra_data["features"]["a"]) == {"tvd", "hellinger", "kld"}
    tvds = [general.extra_data["features"][f]["tvd"] for f in ("a", "b")]
    assert metrics["tvd_mean"] == pytest.approx(np.mean(tvds))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.49, ResultStatusApp.no_detection),
        (0.5, ResultStatusApp.potential_detection),
        (0.69, ResultStatusApp.potential_detection),
        (0.7, ResultStatusApp.detected),
    ],
)
def test_general_drift_classifier(value: float, expected: ResultStatusApp) -> None:
    from mm_dagster.schemas import status_from_thresholds

    assert status_from_thresholds(value, 0.5, 0.7) == expected


@pytest.mark.parametrize(("potential", "detected"), [(0.7, 0.5), (0, 0.5), (0.5, 1.0), (0.5, 0.5)])
def test_thresholds_are_validated(potential: float, detected: float) -> None:
    with pytest.raises(MonitoringError, match="0 < potential"):
        HistogramDataDriftApplication(potential=potential, detected=detected)


def test_identical_binary_data_is_not_drift_unless_mlrun_compatible() -> None:
    data = pd.DataFrame({"x": [0.0, 1.0] * 500})
    results, _metrics = run_app(HistogramDataDriftApplication(), data, data)
    assert results["general_drift"].value == pytest.approx(0.0, abs=1e-12)
    assert results["general_drift"].status == ResultStatusApp.no_detection
    compat, _ = run_app(HistogramDataDriftApplication(mlrun_compatible_binning=True), data, data)
    # MLRun puts every 1.0 in the overflow bin: TVD 0.5, Hellinger ~0.707 -> ~0.60, a false alarm.
    assert compat["general_drift"].value == pytest.approx(0.6036, abs=1e-3)
    assert compat["general_drift"].status == ResultStatusApp.potential_detection


def test_categorical_features_are_compared() -> None:
    reference = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 500})
    window = pd.DataFrame({"c": ["a"] * 100 + ["new"] * 100})
    results, _ = run_app(HistogramDataDriftApplication(), reference, window)
    features = results["general_drift"].extra_data["features"]
    # window: a 0.5, b 0, unseen 0.5 vs reference a 0.5, b 0.5, unseen 0
    assert features["c"]["tvd"] == pytest.approx(0.5)
    assert results["feature_drift"].extra_data["drifting_features"] == ["c"]
    assert results["feature_drift"].status == ResultStatusApp.detected


def test_empty_feature_stats_warns_and_outputs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    app = HistogramDataDriftApplication()
    ctx = MonitoringApplicationContext(
        application_name=app.name,
        endpoint=ModelEndpoint(
            id="0" * 32, name="ep", feature_names=["x"], label_names=[], column_types={}, feature_stats={}
        ),
        window=past_window(),
        sample_df=pd.DataFrame({"x": [1.0]}),
        artifacts=None,  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.WARNING):
        assert app.do_tracking(ctx) is None
    assert "no reference feature_stats" in caplog.text


def test_small_windows_are_irrelevant() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"a": rng.normal(size=1000)})
    window = pd.DataFrame({"a": rng.normal(5, size=29)})
    results, metrics = run_app(HistogramDataDriftApplication(), reference, window)
    assert results["general_drift"].status == ResultStatusApp.irrelevant
    assert results["feature_drift"].status == ResultStatusApp.irrelevant
    assert metrics["tvd_mean"] > 0.5  # values are still computed and stored


def test_one_drifting_feature_is_not_hidden_by_the_average() -> None:
    rng = np.random.default_rng(2)
    cols = [f"f{i}" for i in range(10)]
    reference = pd.DataFrame({c: rng.normal(size=5000) for c in cols})
    window = pd.DataFrame({c: rng.normal(size=1000) for c in cols})
    window["f3"] = rng.normal(1.0, size=1000)
    results, _ = run_app(HistogramDataDriftApplication(), reference, window)
    assert results["general_drift"].status == ResultStatusApp.no_detection
    assert results["feature_drift"].status == ResultStatusApp.detected
    assert results["feature_drift"].extra_data["drifting_features"] == ["f3"]


REFERENCES = {
    "normal": lambda rng, n: rng.normal(size=n),
    "exponential": lambda rng, n: rng.exponential(size=n),
    "uniform": lambda rng, n: rng.uniform(size=n),
    "bimodal": lambda rng, n: np.where(rng.random(n) < 0.3, rng.normal(-3, 0.5, n), rng.normal(2, 1, n)),
}


def reference_histogram(name: str, seed: int) -> np.ndarray:
    values = REFERENCES[name](np.random.default_rng(seed), 50_000)
    return np.asarray(compute_feature_stats(pd.DataFrame({"x": values}))["x"]["hist"][0], float)


def drift_of(window_counts: np.ndarray, ref_counts: np.ndarray) -> FeatureDrift:
    return FeatureDrift(
        "x",
        "numeric",
        int(window_counts.sum()),
        int(ref_counts.sum()),
        window_counts,
        ref_counts,
        float(total_variation(normalise(window_counts), normalise(ref_counts))),
        0.0,
        0.0,
    )


def count_flagged(windows: np.ndarray, ref: np.ndarray, cache: NullThresholdCache) -> int:
    """How many of the window histograms (rows) are flagged potential or detected."""
    return sum(
        feature_verdict(drift_of(counts.astype(float), ref), cache, 0.1).status
        >= ResultStatusApp.potential_detection
        for counts in windows
    )


def test_feature_drift_false_alarms_at_most_one_percent() -> None:
    """Windows of >= 100 rows drawn from the reference: <= 1% of (feature, window) pairs flagged."""
    rng = np.random.default_rng(20261123)
    cache = NullThresholdCache()
    flagged = total = 0
    for name in REFERENCES:
        ref = reference_histogram(name, seed=len(name))
        for n in (100, 150, 200, 400, 1000, 5000, 20000):
            flagged += count_flagged(rng.multinomial(n, normalise(ref), size=150), ref, cache)
            total += 150
    assert total == 4 * 7 * 150
    assert flagged / total <= 0.01, f"{flagged}/{total} flagged"


def mass_target(p: np.ndarray, how: str) -> np.ndarray:
    if how == "spread":
        return normalise(np.r_[0, np.full(20, 1 / 20), 0])
    if how == "shift":
        return normalise(np.r_[0, 0, 0, p[:-3]])
    return normalise(np.r_[np.zeros(21), 1.0])  # "tail": beyond the reference max


def moved_mass(p: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The mixture of p and target at TVD exactly 0.2 from p."""
    lam = 0.2 / total_variation(target, p)
    q = (1 - lam) * p + lam * target
    assert total_variation(q, p) == pytest.approx(0.2)
    return q


def test_feature_drift_detects_twenty_percent_moved_mass() -> None:
    """Windows of >= 200 rows with true TVD 0.2: >= 95% flagged."""
    rng = np.random.default_rng(7)
    cache = NullThresholdCache()
    flagged = total = 0
    for name in REFERENCES:
        ref = reference_histogram(name, seed=len(name))
        p = normalise(ref)
        for how in ("spread", "shift", "tail"):
            target = mass_target(p, how)
            if total_variation(target, p) < 0.2:
                continue  # this shape cannot move 20% of this reference's mass
            q = moved_mass(p, target)
            for n in (200, 300, 1000, 5000):
                flagged += count_flagged(rng.multinomial(n, q, size=100), ref, cache)
                total += 100
    assert total >= 4 * 2 * 4 * 100
    assert flagged / total >= 0.95, f"{flagged}/{total} flagged"


def test_effect_size_floor_ignores_negligible_drift_in_huge_windows() -> None:
    ref = reference_histogram("normal", seed=3)
    p = normalise(ref)
    q = 0.97 * p + 0.03 * normalise(np.r_[0, np.ones(20), 0])  # true TVD ~0.03
    counts = np.random.default_rng(0).multinomial(1_000_000, q).astype(float)
    cache = NullThresholdCache()
    assert feature_verdict(drift_of(counts, ref), cache, 0.1).status == ResultStatusApp.no_detection
    assert feature_verdict(drift_of(counts, ref), cache, 0.0).status == ResultStatusApp.detected


def test_null_thresholds_shrink_with_window_size_and_are_cached() -> None:
    cache = NullThresholdCache()
    p = normalise(reference_histogram("normal", seed=3))
    small = cache.quantiles(p, 100, 50_000)
    large = cache.quantiles(p, 10_000, 50_000)
    assert small.potential > 0.15 > 0.03 > large.potential
    assert small.detected >= small.potential
    before = cache.simulations
    cache.quantiles(p, 101, 50_000)
    cache.quantiles(np.roll(p, 3), 100, 50_000)  # permuted bins share the simulation
    assert cache.simulations == before


@pytest.mark.parametrize("n", [1, 2, 7, 100, 101, 1000, 123456])
def test_size_bucket_rounds_down(n: int) -> None:
    b = size_bucket(n)
    assert 1 <= b <= n
    assert b > n / 2 ** (1 / 8) - 1


def test_feature_drifts_skips_columns_without_histograms() -> None:
    reference = compute_feature_stats(pd.DataFrame({"x": [1.0, 2.0], "empty": [np.nan, np.nan]}))
    drifts = feature_drifts(reference, pd.DataFrame({"x": [1.0], "empty": [1.0], "other": [3.0]}))
    assert [d.feature for d in drifts] == ["x"]
