"""The multivariate drift app: NannyML golden numbers, a correlation flip no marginal test sees,
the app's statuses, its fitted-model cache, and one run through Dagster."""

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dagster import instance_for_test
from scipy.stats import ks_2samp

from mm_dagster.applications import HistogramDataDriftApplication, MultivariateDriftApplication
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.model_cache import FittedModelCache
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationResult, normalise_outputs
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.stats.multivariate import (
    ClassifierSettings,
    ReconstructionSettings,
    auroc_bounds,
    auroc_null_std,
    chunk_means,
    fit_domain_classifier,
    fit_reconstruction,
)
from mm_dagster.stats.tabular_encoding import FrequencyEncoding, OrdinalEncoding

from .conftest import materialize_window, past_window

GOLDEN = Path(__file__).parent / "golden"
# Small classifier settings for tests that are not about the classifier's power.
FAST_CLASSIFIER = ClassifierSettings(max_rows=400, folds=3, max_iter=30)


def correlated(rows: int, rho: float, seed: int) -> pd.DataFrame:
    """x0, x1 standard normal with correlation `rho`; x2, x3 independent; a categorical."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=rows)
    x1 = rho * x0 + np.sqrt(1 - rho**2) * rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x0": x0,
            "x1": x1,
            "x2": rng.normal(size=rows),
            "x3": rng.exponential(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows, p=[0.5, 0.3, 0.2]),
        }
    )


def with_timestamps(frame: pd.DataFrame, window: Window, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    span_us = int((window.end - window.start).total_seconds() * 1e6)
    offsets = np.sort(rng.integers(0, span_us, size=len(frame)))
    return frame.assign(timestamp=pd.Timestamp(window.start) + pd.to_timedelta(offsets, unit="us"))


def results_by_name(report: Any, endpoint_id: str) -> dict[str, ModelMonitoringApplicationResult]:
    results, _metrics = report.outputs[endpoint_id]
    return {r.name: r for r in results}


class StoredReference:
    """A `ReferenceStore` stand-in that counts loads."""

    def __init__(self, frame: pd.DataFrame | None) -> None:
        self.frame = frame
        self.loads = 0

    def load(self, endpoint_id: str) -> pd.DataFrame | None:
        self.loads += 1
        return self.frame


def run_direct(
    app: MultivariateDriftApplication,
    reference: StoredReference,
    window: pd.DataFrame,
    *,
    endpoint_id: str = "0" * 32,
    reference_version: int = 1,
) -> tuple[dict[str, ModelMonitoringApplicationResult], dict[str, float]]:
    endpoint = ModelEndpoint(
        id=endpoint_id,
        name="ep",
        feature_names=[c for c in window.columns if c != "timestamp"],
        label_names=[],
        column_types={},
        feature_stats={},
        reference_version=reference_version,
    )
    ctx = MonitoringApplicationContext(
        application_name=app.name,
        endpoint=endpoint,
        window=past_window(),
        sample_df=window,
        artifacts=None,  # type: ignore[arg-type]  # the app logs no artifact
        references=reference,  # type: ignore[arg-type]
    )
    results, metrics = normalise_outputs(app.do_tracking(ctx))
    return {r.name: r for r in results}, {m.name: m.value for m in metrics}


# --- NannyML golden numbers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / "nannyml_multivariate.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def car_loan() -> pd.DataFrame:
    data = pd.read_parquet(GOLDEN / "nannyml_car_loan.parquet")
    for column in ("salary_range", "size_of_downpayment"):
        data[column] = data[column].astype(object)
    return data


def golden_chunks(
    golden: dict[str, Any], car_loan: pd.DataFrame, method: str
) -> list[tuple[dict, pd.DataFrame]]:  # type: ignore[type-arg]
    chunks = []
    for chunk in golden[method]["chunks"]:
        part = car_loan[car_loan["period"] == chunk["period"]].reset_index(drop=True)
        chunks.append((chunk, part.iloc[chunk["start_index"] : chunk["end_index"] + 1]))
    return chunks


def test_reconstruction_error_matches_nannyml(golden: dict[str, Any], car_loan: pd.DataFrame) -> None:
    features = golden["features"]
    reference = car_loan[car_loan["period"] == "reference"].reset_index(drop=True)
    model = fit_reconstruction(reference, features, ReconstructionSettings.nannyml())
    assert model.components == golden["reconstruction"]["pca_components_kept"]
    bands = model.bands(golden["chunk_size"])
    assert (
        bands.rule == "reference_chunks" and bands.chunks == golden["reference_rows"] // golden["chunk_size"]
    )
    alerts, ours = [], []
    for chunk, rows in golden_chunks(golden, car_loan, "reconstruction"):
        # Same preprocessing and the same scikit-learn PCA: only float summation order differs
        # (measured: 8e-14 apart), so 1e-9 relative leaves room for other BLAS builds only.
        error = model.error(rows)
        assert error == pytest.approx(chunk["value"], rel=1e-9)
        assert bands.potential.upper == pytest.approx(chunk["upper_threshold"], rel=1e-9)
        assert bands.potential.lower == pytest.approx(chunk["lower_threshold"], rel=1e-9)
        alerts.append(chunk["alert"])
        ours.append(bands.status(error) >= ResultStatusApp.potential_detection)
    assert ours == alerts
    assert any(alerts) and not all(alerts)  # the golden data has both kinds of chunk


def test_default_reconstruction_alerts_on_the_chunks_nannyml_alerts_on(
    golden: dict[str, Any], car_loan: pd.DataFrame
) -> None:
    reference = car_loan[car_loan["period"] == "reference"].reset_index(drop=True)
    model = fit_reconstruction(reference, golden["features"])  # band from held-out rows
    assert model.held_out and len(model.reference_errors) == golden["reference_rows"] // 2
    bands = model.bands(golden["chunk_size"])
    for chunk, rows in golden_chunks(golden, car_loan, "reconstruction"):
        if chunk["period"] == "analysis":
            error = model.error(rows)
            assert error == pytest.approx(chunk["value"], rel=0.01)  # a PCA fitted on half the rows
            assert (bands.status(error) >= ResultStatusApp.potential_detection) == chunk["alert"]


def test_large_windows_from_the_reference_distribution_stay_quiet() -> None:
    rng = np.random.default_rng(7)
    columns = [f"f{i}" for i in range(12)]

    def draw(rows: int) -> pd.DataFrame:
        return pd.DataFrame(rng.normal(size=(rows, len(columns))), columns=columns)

    reference = draw(40_000)
    ours = fit_reconstruction(reference, columns)
    nannyml = fit_reconstruction(reference, columns, ReconstructionSettings.nannyml())
    in_sample_z = []
    for rows in (20_000, 40_000):
        for _ in range(3):
            window = draw(rows)
            assert ours.bands(rows).status(ours.error(window)) == ResultStatusApp.no_detection
            bands = nannyml.bands(rows)
            in_sample_z.append((nannyml.error(window) - bands.mean) / bands.std)
    # Why the default holds rows out: in-sample errors sit well below a new sample's.
    assert min(in_sample_z) > 3


@pytest.mark.slow
def test_reconstruction_false_alarms_stay_within_the_window_budget() -> None:
    # Issue 15's budget per window: <= 1% potential_detection, <= 0.1% detected.
    rng = np.random.default_rng(11)
    reference = correlated(20_000, 0.8, seed=1)
    model = fit_reconstruction(reference, list(reference.columns))
    for rows in (100, 1000):
        bands = model.bands(rows)
        statuses = np.array(
            [
                bands.status(model.error(correlated(rows, 0.8, seed=int(rng.integers(1 << 30)))))
                for _ in range(300)
            ]
        )
        assert (statuses >= ResultStatusApp.potential_detection).mean() <= 0.01, rows
        assert (statuses == ResultStatusApp.detected).sum() == 0, rows


@pytest.mark.slow
def test_domain_classifier_auroc_close_to_nannyml(golden: dict[str, Any], car_loan: pd.DataFrame) -> None:
    features = golden["features"]
    reference = car_loan[car_loan["period"] == "reference"].reset_index(drop=True)
    classifier = fit_domain_classifier(reference, features, ClassifierSettings(max_rows=2000))
    analysis = [
        (c, rows)
        for c, rows in golden_chunks(golden, car_loan, "domain_classifier")
        if c["period"] == "analysis"
    ]
    for chunk, rows in analysis:
        score = classifier.score(rows)
        # LightGBM on all 50k reference rows + the chunk vs scikit-learn's HGB on 2,000 + 2,000
        # random rows: the same kind of model on fewer rows (measured: within 0.021 of NannyML on
        # every chunk, 0.50 on stable chunks and 0.91 on drifted ones).
        assert score.auroc == pytest.approx(chunk["value"], abs=0.03), chunk
        bounds = auroc_bounds(score.reference_rows, score.window_rows)
        if abs(chunk["value"] - chunk["upper_threshold"]) > 0.05:  # NannyML's verdict is clear
            assert (bounds.status(score.auroc) >= ResultStatusApp.potential_detection) == chunk["alert"]


# --- what no per-feature test sees -----------------------------------------------------------


def test_correlation_flip_is_caught_by_the_multivariate_app_and_by_no_per_feature_test(
    mm: Monitoring, window: Window
) -> None:
    reference = correlated(5000, 0.8, seed=1)
    flipped = correlated(1000, -0.8, seed=2)
    endpoint = mm.create_endpoint("flip", reference=reference)
    mm.record_events("flip", with_timestamps(flipped, window))
    histogram, multivariate = mm.run_window(
        [
            HistogramDataDriftApplication(),
            MultivariateDriftApplication(domain_classifier="always"),
        ],
        window,
    )
    assert not histogram.failures and not multivariate.failures

    per_feature = results_by_name(histogram, endpoint.id)
    assert per_feature["feature_drift"].status == ResultStatusApp.no_detection
    assert per_feature["feature_drift"].extra_data["drifting_features"] == []
    assert per_feature["general_drift"].status == ResultStatusApp.no_detection
    for column in ("x0", "x1", "x2", "x3"):
        assert ks_2samp(reference[column], flipped[column]).pvalue > 0.05, column
    assert flipped["x0"].corr(flipped["x1"]) < -0.75 < 0.75 < reference["x0"].corr(reference["x1"])

    found = results_by_name(multivariate, endpoint.id)
    assert found["reconstruction_drift"].status == ResultStatusApp.detected
    assert found["domain_classifier_drift"].status == ResultStatusApp.detected
    assert found["reconstruction_drift"].kind == ResultKindApp.data_drift
    assert found["domain_classifier_drift"].value > 0.75
    stored = mm.results.results(endpoint.id, "multivariate-drift")
    assert {r.name: r.status for r in stored} == {
        "reconstruction_drift": ResultStatusApp.detected,
        "domain_classifier_drift": ResultStatusApp.detected,
    }
    metrics = {m.name for m in mm.results.metrics(endpoint.id, "multivariate-drift")}
    assert metrics == {
        "reconstruction_error",
        "reconstruction_error_lower",
        "reconstruction_error_upper",
        "domain_classifier_auroc",
    }


def test_windows_from_the_reference_distribution_stay_quiet() -> None:
    app = MultivariateDriftApplication(domain_classifier="always", classifier=FAST_CLASSIFIER)
    stored = StoredReference(correlated(20_000, 0.8, seed=1))
    for seed in range(10, 16):
        results, metrics = run_direct(app, stored, correlated(500, 0.8, seed=seed))
        assert results["reconstruction_drift"].status == ResultStatusApp.no_detection, seed
        assert results["domain_classifier_drift"].status == ResultStatusApp.no_detection, seed
        assert metrics["reconstruction_error_lower"] < metrics["reconstruction_error"]
        assert metrics["reconstruction_error"] < metrics["reconstruction_error_upper"]
    assert stored.loads == 1  # fitted once, then served from the cache


# --- app behaviour ---------------------------------------------------------------------------


def test_small_windows_are_irrelevant_and_tiny_ones_skip_the_classifier() -> None:
    app = MultivariateDriftApplication(
        domain_classifier="always", min_window_rows=100, classifier=FAST_CLASSIFIER
    )
    stored = StoredReference(correlated(3000, 0.8, seed=1))
    results, _ = run_direct(app, stored, correlated(60, -0.9, seed=3))
    assert {r.status for r in results.values()} == {ResultStatusApp.irrelevant}
    assert set(results) == {"reconstruction_drift", "domain_classifier_drift"}
    results, metrics = run_direct(app, stored, correlated(1, 0.8, seed=3))
    assert set(results) == {"reconstruction_drift"} and "domain_classifier_auroc" not in metrics


def test_no_stored_reference_warns_and_outputs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    app = MultivariateDriftApplication(domain_classifier="always")
    with caplog.at_level("WARNING"):
        results, metrics = run_direct(app, StoredReference(None), correlated(300, 0.8, seed=3))
    assert results == {} and metrics == {}
    assert "no stored reference sample" in caplog.text
    assert len(app.fitted) == 0


def test_an_endpoint_without_reference_gets_nothing_through_the_runner(
    mm: Monitoring, window: Window
) -> None:
    endpoint = mm.create_endpoint("bare", feature_names=["x0", "x1"])
    mm.record_events("bare", with_timestamps(correlated(200, 0.8, seed=3)[["x0", "x1"]], window))
    (report,) = mm.run_window([MultivariateDriftApplication(domain_classifier="always")], window)
    assert report.outputs[endpoint.id] == ([], []) and not report.failures


def test_fitted_once_per_reference_version_and_the_cache_is_bounded() -> None:
    app = MultivariateDriftApplication(domain_classifier="always", classifier=FAST_CLASSIFIER, cache_size=2)
    stored = StoredReference(correlated(2000, 0.8, seed=1))
    window = correlated(200, 0.8, seed=5)
    for _ in range(3):
        run_direct(app, stored, window)
    assert stored.loads == 1
    run_direct(app, stored, window, reference_version=2)  # a new reference: fitted again
    assert stored.loads == 2
    run_direct(app, stored, window, endpoint_id="1" * 32)
    assert stored.loads == 3 and len(app.fitted) == 2  # the least recently used one went
    assert ("0" * 32, 1, "") not in app.fitted and ("0" * 32, 2, "") in app.fitted


def test_updating_the_reference_refits_through_the_runner(mm: Monitoring, window: Window) -> None:
    app = MultivariateDriftApplication(domain_classifier="always", classifier=FAST_CLASSIFIER)
    endpoint = mm.create_endpoint("refit", reference=correlated(3000, 0.8, seed=1))
    mm.record_events("refit", with_timestamps(correlated(300, -0.8, seed=2), window))
    (report,) = mm.run_window([app], window)
    assert results_by_name(report, endpoint.id)["reconstruction_drift"].status == ResultStatusApp.detected
    mm.update_reference("refit", correlated(3000, -0.8, seed=4))  # the flip is the new normal
    (report,) = mm.run_window([app], window)
    assert results_by_name(report, endpoint.id)["reconstruction_drift"].status == ResultStatusApp.no_detection
    assert (endpoint.id, 1, "") in app.fitted and (endpoint.id, 2, "") in app.fitted


def test_missing_non_finite_and_unseen_values_are_scored() -> None:
    app = MultivariateDriftApplication(
        domain_classifier="always", classifier=FAST_CLASSIFIER, min_window_rows=10
    )
    reference = correlated(3000, 0.8, seed=1)
    reference.loc[::50, "x2"] = np.nan
    window = correlated(200, 0.8, seed=6)
    window.loc[::7, "x0"] = np.nan
    window.loc[::11, "x1"] = np.inf
    window.loc[::13, "colour"] = None
    window.loc[::17, "colour"] = "ultraviolet"
    results, metrics = run_direct(app, StoredReference(reference), window)
    assert set(results) == {"reconstruction_drift", "domain_classifier_drift"}
    assert all(np.isfinite(v) for v in metrics.values())


def test_features_without_a_reference_value_are_skipped() -> None:
    app = MultivariateDriftApplication(domain_classifier="always", classifier=FAST_CLASSIFIER)
    reference = correlated(2000, 0.8, seed=1).assign(empty=np.nan)
    results, _ = run_direct(app, StoredReference(reference), correlated(200, 0.8, seed=2).assign(empty=1.0))
    extra = results["reconstruction_drift"].extra_data
    assert extra["skipped_features"] == ["empty"] and extra["feature_count"] == 5


def test_a_single_feature_gets_the_classifier_only(caplog: pytest.LogCaptureFixture) -> None:
    app = MultivariateDriftApplication(domain_classifier="always", classifier=FAST_CLASSIFIER)
    reference = correlated(2000, 0.8, seed=1)[["x0"]]
    with caplog.at_level("WARNING"):
        results, _ = run_direct(
            app,
            StoredReference(reference),
            correlated(300, 0.8, seed=2)[["x0"]].assign(x0=lambda d: d.x0 + 2),
        )
    assert set(results) == {"domain_classifier_drift"}
    assert results["domain_classifier_drift"].status == ResultStatusApp.detected
    assert "fewer than two usable features" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_window_rows": 5},
        {"auroc_potential": 0.8, "auroc_detected": 0.7},
        {"auroc_potential": 0.4},
        {"auroc_alpha_potential": 0.001, "auroc_alpha_detected": 0.01},
        {"cache_size": 0},
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(MonitoringError):
        MultivariateDriftApplication(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variance_share": 1.0},
        {"held_out_share": 0.0},
        {"min_reference_chunks": 1},
        {"potential_std": 4.0, "detected_std": 3.0},
    ],
)
def test_reconstruction_settings_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(MonitoringError):
        ReconstructionSettings(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_rows": 5}, {"folds": 1}, {"max_iter": 0}, {"threads": 0}])
def test_classifier_settings_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(MonitoringError):
        ClassifierSettings(**kwargs)


# --- the pieces ------------------------------------------------------------------------------


def test_frequency_encoding_is_count_encoding_after_imputation() -> None:
    reference = pd.DataFrame(
        {"num": [1.0, 2.0, np.nan, 5.0], "cat": ["a", "a", None, "b"], "flag": [True, False, True, True]}
    )
    encoding = FrequencyEncoding.fit(reference, ["num", "cat", "flag"])
    window = pd.DataFrame(
        {"num": [np.inf, 4.0, None], "cat": ["b", "zzz", None], "flag": [False, True, True]}
    )
    encoded = encoding.transform(window)
    # num: missing and inf -> reference mean (8/3); cat: missing imputed as "a" (then 3 of 4),
    # unseen -> 0; flag: True 3/4, False 1/4.
    expected = np.array([[8 / 3, 0.25, 0.25], [4.0, 0.0, 0.75], [8 / 3, 0.75, 0.75]])
    np.testing.assert_allclose(encoded, expected)


def test_ordinal_encoding_codes_the_top_categories_and_one_code_for_the_rest() -> None:
    reference = pd.DataFrame({"cat": ["a"] * 5 + ["b"] * 3 + ["c"], "num": np.arange(9.0)})
    encoding = OrdinalEncoding.fit(reference, ["cat", "num"])
    encoded = encoding.transform(pd.DataFrame({"cat": ["b", "new", None], "num": [1.0, -np.inf, None]}))
    np.testing.assert_array_equal(encoded, [[1.0, 1.0], [3.0, np.nan], [np.nan, np.nan]])
    np.testing.assert_array_equal(encoding.categorical_mask, [True, False])


def test_reference_chunk_band_is_nannyml_standard_deviation_threshold() -> None:
    errors = np.random.default_rng(3).gamma(4.0, 0.25, size=10_450)
    means = chunk_means(errors, 1000)
    assert len(means) == 10  # the incomplete last chunk is left out
    np.testing.assert_allclose(means, errors[:10_000].reshape(10, 1000).mean(axis=1))


def test_auroc_bounds_rise_for_small_samples() -> None:
    assert auroc_null_std(2000, 2000) == pytest.approx(np.sqrt(4001 / (12 * 2000 * 2000)))
    large = auroc_bounds(2000, 2000)
    assert (large.potential, large.detected) == (0.65, 0.75)
    small = auroc_bounds(2000, 12)
    sd = 1.5 * auroc_null_std(2000, 12)  # cross-validation's wider null
    assert small.potential == pytest.approx(0.5 + 2.3263479 * sd)
    assert small.detected == pytest.approx(0.5 + 3.0902323 * sd)
    assert small.status(small.potential) == ResultStatusApp.no_detection  # strictly above, as NannyML
    assert small.status(small.potential + 1e-9) == ResultStatusApp.potential_detection


def test_fitted_model_cache_is_thread_safe_and_least_recently_used() -> None:
    cache: FittedModelCache[int, object] = FittedModelCache(max_entries=3)
    fits = []
    barrier = threading.Barrier(8)
    got: list[object] = []

    def fit() -> object:
        fits.append(1)
        return object()

    def worker() -> None:
        barrier.wait()
        got.append(cache.get_or_fit(0, fit))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(g) for g in got}) == 1  # every thread got the one stored model
    for key in (1, 2):
        cache.get_or_fit(key, object)
    cache.get(0)  # 0 is now the most recently used
    cache.get_or_fit(3, object)
    assert 0 in cache and 1 not in cache and len(cache) == 3


# --- through Dagster ---------------------------------------------------------------------------


def test_materialize_a_window_with_the_multivariate_app(isolated_home: Path) -> None:
    home = str(isolated_home)
    window = past_window(60)
    with Monitoring(home=home) as mm:
        calm = mm.create_endpoint("calm", reference=correlated(3000, 0.8, seed=1))
        flip = mm.create_endpoint("flip", reference=correlated(3000, 0.8, seed=2))
        mm.record_events("calm", with_timestamps(correlated(400, 0.8, seed=3), window))
        mm.record_events("flip", with_timestamps(correlated(400, -0.8, seed=4), window, seed=1))
    config = MonitoringConfig(
        apps=[MultivariateDriftApplication(domain_classifier="always", classifier=FAST_CLASSIFIER)],
        partitions_start="2026-11-01",
    )
    defs = build_definitions(config, resource=MonitoringResource(home=home))
    with instance_for_test() as instance:
        result = materialize_window(defs, window.key, instance, home)
        assert result.success
    with Monitoring(home=home) as mm:
        stored = {(r.endpoint_id, r.name): r.status for r in mm.results.results(app="multivariate-drift")}
    assert stored == {
        (calm.id, "reconstruction_drift"): ResultStatusApp.no_detection,
        (calm.id, "domain_classifier_drift"): ResultStatusApp.no_detection,
        (flip.id, "reconstruction_drift"): ResultStatusApp.detected,
        (flip.id, "domain_classifier_drift"): ResultStatusApp.detected,
    }


def test_by_default_the_classifier_confirms_reconstruction_drift_only() -> None:
    app = MultivariateDriftApplication(classifier=FAST_CLASSIFIER)
    stored = StoredReference(correlated(20_000, 0.8, seed=1))
    calm, _ = run_direct(app, stored, correlated(500, 0.8, seed=30))
    assert calm["reconstruction_drift"].status == ResultStatusApp.no_detection
    assert "domain_classifier_drift" not in calm  # not run: ~0.5 s a window saved
    flipped, _ = run_direct(app, stored, correlated(500, -0.8, seed=31))
    assert flipped["reconstruction_drift"].status == ResultStatusApp.detected
    assert flipped["domain_classifier_drift"].status == ResultStatusApp.detected
    with pytest.raises(MonitoringError, match="domain_classifier must be"):
        MultivariateDriftApplication(domain_classifier="sometimes")
