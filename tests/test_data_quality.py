"""DataQualityApplication (issue 11 §1): rates cross-checked with Evidently 0.7, the size-aware
rule, non-finite values, never-seen categories and events rejected at ingestion."""

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import DataQualityApplication
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.outputs import ModelMonitoringApplicationResult, normalise_outputs
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.monitoring import Monitoring
from mm_dagster.stats.data_quality import MISSING, OUT_OF_RANGE, UNSEEN, rate_checks
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.storage.invalid_events import InvalidEventKey

from .conftest import past_window
from .test_histogram_drift_app import scratch_artifacts

DETECTED = ResultStatusApp.detected


def run_app(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    app: DataQualityApplication | None = None,
    invalid_events: dict[str, int] | None = None,
) -> tuple[ModelMonitoringApplicationResult, dict[str, float]]:
    app = app or DataQualityApplication()
    ctx = MonitoringApplicationContext(
        application_name=app.name,
        endpoint=ModelEndpoint(
            id="0" * 32,
            name="ep",
            feature_names=list(reference.columns),
            label_names=[],
            column_types={},
            feature_stats=compute_feature_stats(reference),
        ),
        window=past_window(),
        sample_df=window,
        artifacts=scratch_artifacts(),
        invalid_events=invalid_events,
    )
    results, metrics = normalise_outputs(app.do_tracking(ctx))
    (result,) = results
    return result, {m.name: m.value for m in metrics}


def frames(rng: np.random.Generator, rows: int, *, missing: float = 0.02) -> pd.DataFrame:
    x = rng.normal(size=rows)
    x[rng.random(rows) < missing] = np.nan
    city = rng.choice(["ams", "ber", "par", "rom"], size=rows).astype(object)
    city[rng.random(rows) < missing] = None
    return pd.DataFrame({"x": x, "city": city})


def test_rates_match_evidently() -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount

    rng = np.random.default_rng(1)
    reference, window = frames(rng, 3000), frames(rng, 800, missing=0.1)
    window.loc[:40, "x"] = 9.0  # out of the reference's range
    window.loc[50:60, "x"] = np.inf
    window.loc[100:130, "city"] = "lis"  # never seen
    stats = compute_feature_stats(reference)
    ours = {(c.feature, c.check): c.rate for c in rate_checks(stats, window)}
    definition = DataDefinition(numerical_columns=["x"], categorical_columns=["city"])
    metrics = [
        MissingValueCount(column="x"),
        MissingValueCount(column="city"),
        OutRangeValueCount(column="x", left=stats["x"]["min"], right=stats["x"]["max"]),
        OutListValueCount(column="city", values=sorted(reference["city"].dropna().unique())),
    ]
    snapshot = Report(metrics).run(Dataset.from_pandas(window, data_definition=definition), None)
    shares = [r["value"]["share"] for r in snapshot.dict()["metrics"]]
    assert ours[("x", MISSING)] == pytest.approx(shares[0])
    assert ours[("city", MISSING)] == pytest.approx(shares[1])
    assert ours[("x", OUT_OF_RANGE)] == pytest.approx(shares[2])
    assert ours[("city", UNSEEN)] == pytest.approx(shares[3])


def test_calm_windows_do_not_alarm_at_any_size() -> None:
    rng = np.random.default_rng(2)
    reference = frames(rng, 20_000)
    statuses = [run_app(reference, frames(rng, rows))[0].status for rows in [200] * 150 + [5000] * 20]
    assert sum(s >= ResultStatusApp.potential_detection for s in statuses) <= 1


def test_a_small_window_needs_more_than_noise_and_a_huge_one_more_than_a_blip() -> None:
    rng = np.random.default_rng(3)
    reference = frames(rng, 20_000)
    small = frames(rng, 200, missing=0.0)
    small.loc[:6, ["x", "city"]] = [np.nan, None]  # 3.5% missing against 2%: 7 rows, noise at this size
    assert run_app(reference, small)[0].status == ResultStatusApp.no_detection
    huge = frames(rng, 1_000_000, missing=0.0201)  # significant, but a 0.01-point rise
    assert run_app(reference, huge)[0].status == ResultStatusApp.no_detection
    broken = frames(rng, 500, missing=0.3)
    result, metrics = run_app(reference, broken)
    assert result.status == DETECTED and result.kind == ResultKindApp.mm_app_anomaly
    assert set(result.extra_data["problems"]) == {"x: missing", "city: missing"}
    assert metrics["missing_rate__x"] == pytest.approx(broken["x"].isna().mean())
    assert result.value == pytest.approx(
        max(broken["x"].isna().mean(), broken["city"].isna().mean()) - 0.02, abs=0.01
    )


def test_non_finite_out_of_range_and_unseen_values_are_flagged() -> None:
    rng = np.random.default_rng(4)
    reference = frames(rng, 10_000)
    window = frames(rng, 1000)
    window.loc[:99, "x"] = np.inf
    window.loc[200:299, "city"] = "oslo"
    result, metrics = run_app(reference, window)
    assert result.status == DETECTED
    assert {"x: non_finite", "x: out_of_range", "city: unseen"} <= set(result.extra_data["problems"])
    assert metrics["non_finite_rate__x"] == pytest.approx(0.1, abs=0.005)
    assert result.extra_data["features"]["city"]["unseen"]["rate"] == pytest.approx(0.1, abs=0.005)


def test_events_rejected_at_ingestion_count(mm: Monitoring) -> None:
    rng = np.random.default_rng(5)
    endpoint = mm.create_endpoint("ep", reference=frames(rng, 5000))
    window = past_window()
    mm.invalid_events.add({InvalidEventKey(endpoint.id, window.start, "x: not a number"): (150, "'abc'")})
    events = {endpoint.id: frames(rng, 850)}
    (report,) = mm.run_window([DataQualityApplication()], window, events)
    (result,), metrics = report.outputs[endpoint.id]
    assert result.status == DETECTED and "invalid_events" in result.extra_data["problems"]
    assert result.extra_data["invalid_events"] == {"x: not a number": 150}
    assert {m.name: m.value for m in metrics}["invalid_events"] == 150.0


def test_small_windows_are_irrelevant_and_no_reference_means_no_result() -> None:
    rng = np.random.default_rng(6)
    assert run_app(frames(rng, 1000), frames(rng, 10))[0].status == ResultStatusApp.irrelevant
    with pytest.raises(Exception, match="min_rate_increase"):
        DataQualityApplication(min_rate_increase=2)
