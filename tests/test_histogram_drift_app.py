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
from mm_dagster.stats.drift import feature_drifts
from mm_dagster.stats.feature_stats import compute_feature_stats
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


def test_feature_drifts_skips_columns_without_histograms() -> None:
    reference = compute_feature_stats(pd.DataFrame({"x": [1.0, 2.0], "empty": [np.nan, np.nan]}))
    drifts = feature_drifts(reference, pd.DataFrame({"x": [1.0], "empty": [1.0], "other": [3.0]}))
    assert [d.feature for d in drifts] == ["x"]
