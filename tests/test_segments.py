"""Segments (issue 15 §7): per-segment reference stats, app runs, results, alerts and checks."""

import json
import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from mm_dagster.alerts import LogChannel, data_drift_detected
from mm_dagster.alerts.service import AlertService
from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.segments import (
    OTHER,
    EndpointSegments,
    largest_segments,
    segment_key,
    segment_label,
    split_by_segment,
)
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.checks import plain_value
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage import database as db
from mm_dagster.storage.alert_store import AlertStore

from .conftest import NOW, materialize_window, past_window

COUNTRIES = ["US", "GB", "FR", "IN", "BR", "JP", "CA", "DE", "MX", "AU"]
DRIFT_RESULTS = ("general_drift", "feature_drift")
SHARES = [0.30, 0.15, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04, 0.03]


def frame(rows: int, seed: int, *, de_shift: float = 0.0) -> pd.DataFrame:
    """Four numeric features and a `country` (DE is 5% of rows); `de_shift` SDs added to f0 and
    f1 on DE's rows only."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"f{i}": rng.normal(i, 1.0, rows) for i in range(4)})
    df["country"] = rng.choice(COUNTRIES, size=rows, p=SHARES)
    de = (df["country"] == "DE").to_numpy()
    df.loc[de, "f0"] += de_shift
    df.loc[de, "f1"] += de_shift
    return df


def traffic(window: Window, rows: int, seed: int, *, de_shift: float = 0.0) -> pd.DataFrame:
    df = frame(rows, seed, de_shift=de_shift)
    offsets = np.sort(np.random.default_rng(seed + 1).integers(0, 600_000_000, rows))
    df["timestamp"] = pd.Timestamp(window.start) + pd.to_timedelta(offsets, unit="us")
    return df


@pytest.fixture
def segmented(mm: Monitoring) -> str:
    mm.create_endpoint("shop", reference=frame(40_000, seed=1), segment_columns=["country"])
    return mm.get_endpoint("shop").id


def by_segment(results: list[Any], name: str) -> dict[str, Any]:
    return {segment_label(r.segment): r for r in results if r.name == name}


# -- the pure parts ----------------------------------------------------------------------------


def test_largest_segments_are_capped_and_the_rest_pooled_as_other() -> None:
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] + [None] * 3})
    kept = largest_segments(df, ["c"], 3)
    assert kept == [{"c": "a"}, {"c": "b"}, {"c": "c"}]  # None (3 rows) ties with c: key order
    parts = {segment_key(s): list(rows["c"]) for s, rows in split_by_segment(df, ["c"], kept)}
    assert parts == {
        '{"c":"a"}': ["a"] * 5,
        '{"c":"b"}': ["b"] * 4,
        '{"c":"c"}': ["c"] * 3,
        '{"c":"__other__"}': ["d", "d", "e", None, None, None],
    }
    # A window value the reference never had lands in __other__ too; missing values are a value.
    window = pd.DataFrame({"c": ["z", "a", None]})
    assert [segment_label(s) for s, _ in split_by_segment(window, ["c"], kept)] == ["c=a", "c=__other__"]
    with_null = largest_segments(df, ["c"], 5)
    assert {"c": None} in with_null
    assert segment_label({"c": None}) == "c=null"


def test_segments_of_two_columns_are_value_combinations() -> None:
    df = pd.DataFrame({"c": ["a", "a", "b", "b", "b"], "d": [1.0, 2.0, 1.0, 1.0, np.nan]})
    kept = largest_segments(df, ["c", "d"], 2)
    assert kept == [{"c": "b", "d": 1.0}, {"c": "a", "d": 1.0}]
    parts = {segment_label(s): len(rows) for s, rows in split_by_segment(df, ["c", "d"], kept)}
    assert parts == {"c=b,d=1.0": 2, "c=a,d=1.0": 1, "c=__other__,d=__other__": 2}
    assert segment_key({"d": 1.0, "c": "b"}) == '{"c":"b","d":1.0}'
    long_key = segment_key({"c": "x" * 400})
    assert len(long_key) == 255 and long_key != segment_key({"c": "x" * 401})


# -- endpoints ---------------------------------------------------------------------------------


def test_create_endpoint_stores_per_segment_reference_stats(mm: Monitoring) -> None:
    reference = frame(20_000, seed=2)
    ep = mm.create_endpoint("capped", reference=reference, segment_columns=["country"], max_segments=3)
    assert ep.segment_columns == ["country"] and ep.max_segments == 3
    refs = mm.endpoints.segment_references(ep.id, ep.reference_version)
    assert [segment_label(r.segment) for r in refs] == [
        "country=US",
        "country=GB",
        "country=FR",
        f"country={OTHER}",
    ]
    us = reference[reference["country"] == "US"]
    assert refs[0].rows == len(us)
    assert refs[0].feature_stats["f0"]["mean"] == pytest.approx(us["f0"].mean())
    assert refs[-1].rows == len(reference) - sum(r.rows for r in refs[:-1])
    assert refs[-1].feature_stats["country"]["unique"] == 7  # the seven pooled countries
    # Kept across update_reference (recomputed on the new reference, same columns and cap).
    updated = mm.update_reference("capped", frame(10_000, seed=3), model_version="2")
    assert updated.segment_columns == ["country"] and updated.reference_version == 2
    new_refs = mm.endpoints.segment_references(ep.id, 2)
    assert len(new_refs) == 4 and new_refs[0].rows != refs[0].rows
    assert mm.endpoints.segment_references(ep.id, 1) == refs  # the old version's stay
    # get-or-create: the same declaration is fine, another one says how to change it
    assert mm.create_endpoint("capped", feature_names=ep.feature_names).id == ep.id
    with pytest.raises(MonitoringError, match="update_reference"):
        mm.create_endpoint("capped", feature_names=ep.feature_names, segment_columns=["f0"])
    stopped = mm.update_reference("capped", frame(10_000, seed=3), segment_columns=[])
    assert stopped.segment_columns == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"segment_columns": ["region"]}, "not features or labels"),
        ({"segment_columns": "country"}, "list of column names"),
        ({"segment_columns": ["country"], "max_segments": 0}, r"max_segments must be in \[1, 1000\]"),
        ({"segment_columns": ["country", "country"]}, "duplicate segment columns"),
    ],
)
def test_bad_segment_declarations_are_refused(mm: Monitoring, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MonitoringError, match=message):
        mm.create_endpoint("bad", reference=frame(100, seed=0), **kwargs)


def test_segments_need_a_reference(mm: Monitoring) -> None:
    with pytest.raises(MonitoringError, match="segment columns need a reference frame"):
        mm.create_endpoint(
            "no-ref",
            feature_names=["f0", "country"],
            column_types={"country": "string"},
            segment_columns=["country"],
        )


# -- running apps per segment ------------------------------------------------------------------


def test_drift_in_five_percent_of_traffic_is_detected_in_its_segment_only(
    mm: Monitoring, segmented: str
) -> None:
    window = past_window(60)
    mm.record_events("shop", traffic(window, 4000, seed=11, de_shift=3.0))
    alerts = AlertService(AlertStore(mm.engine), [data_drift_detected([LogChannel()])])
    (report,) = mm.run_window([HistogramDataDriftApplication(drift_report="never")], window)
    assert alerts.record_report(report) == 1

    whole = {r.name: r for r in mm.results.results(segmented)}
    assert whole["feature_drift"].status == ResultStatusApp.no_detection
    assert whole["general_drift"].status == ResultStatusApp.no_detection
    segments = mm.results.results(segmented, segment=None)
    drift = by_segment(segments, "feature_drift")
    assert set(drift) == {"", *(f"country={c}" for c in COUNTRIES)}  # DE is 5%: ~200 rows
    assert drift["country=DE"].status == ResultStatusApp.detected
    assert set(drift["country=DE"].extra_data["drifting_features"]) == {"f0", "f1"}
    quiet = [r.status for label, r in drift.items() if label not in ("", "country=DE")]
    assert max(quiet) <= ResultStatusApp.no_detection, quiet
    assert by_segment(segments, "general_drift")["country=DE"].status >= ResultStatusApp.no_detection

    (notification,) = alerts.store.notifications()
    assert "[country=DE]" in notification.subject
    (event,) = notification.payload["events"]
    assert event["segment"] == "country=DE" and event["result"] == "feature_drift"
    assert event["entity"] == f"{segmented}.histogram-data-drift.result.feature_drift[country=DE]"
    assert "shop [country=DE]" in report.worst_endpoints()[0][0]


def test_calm_windows_stay_within_the_budget_across_segments(mm: Monitoring, segmented: str) -> None:
    """The endpoint-wide run and its 10 segments' runs share the window's false-alarm budget: on
    calm windows no drift is raised anywhere (per-run budgets raised one in 7 windows)."""
    app = HistogramDataDriftApplication(drift_report="never")
    first = past_window(60 * 24)
    flagged = 0
    for i in range(40):
        window = Window(first.start + timedelta(minutes=10 * i), first.end + timedelta(minutes=10 * i))
        mm.record_events("shop", traffic(window, 2000, seed=100 + i))
        mm.run_window([app], window)
        statuses = [
            r.status
            for r in mm.results.results(
                segmented, app.name, "feature_drift", window.start, window.end, segment=None
            )
        ]
        assert len(statuses) == 11
        flagged += max(statuses) >= ResultStatusApp.potential_detection
    assert flagged == 0


class SegmentRecorder(ModelMonitoringApplicationBase):
    """Reports what each call saw: its segment, rows and reference rows."""

    NAME = "segment-recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any] | None, int, int, int]] = []

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        ctx = monitoring_context
        reference = ctx.reference_df
        assert reference is not None
        if ctx.segment is not None:
            assert (ctx.sample_df["country"].isin([ctx.segment["country"]])).all() or ctx.segment[
                "country"
            ] == OTHER
        self.seen.append((ctx.segment, len(ctx.sample_df), ctx.feature_stats["f0"]["count"], len(reference)))
        return {"rows": float(len(ctx.sample_df))}


def test_each_segment_call_gets_its_rows_reference_and_name(mm: Monitoring) -> None:
    reference = frame(10_000, seed=4)
    mm.create_endpoint("shop", reference=reference, segment_columns=["country"], max_segments=2)
    window = past_window(60)
    events = traffic(window, 1000, seed=5)
    events.loc[:4, "country"] = "NZ"  # never in the reference: pooled with the other small ones
    mm.record_events("shop", events)
    app = SegmentRecorder()
    mm.run_window([app], window)
    seen = {segment_label(s or {}): (rows, ref_count, ref_rows) for s, rows, ref_count, ref_rows in app.seen}
    counts = events["country"].value_counts()
    assert seen[""] == (1000, 10_000, 10_000)
    assert seen["country=US"][0] == counts["US"]
    assert seen["country=US"][1] == (reference["country"] == "US").sum() == seen["country=US"][2]
    others = ~reference["country"].isin(["US", "GB"])
    assert seen[f"country={OTHER}"] == (1000 - counts["US"] - counts["GB"], others.sum(), others.sum())
    stored = {segment_label(m.segment): m.value for m in mm.results.metrics(segment=None)}
    assert stored == {label: float(rows) for label, (rows, _, _) in seen.items()}


def test_rerunning_a_window_replaces_every_segment_and_the_latest_view_keys_by_segment(
    mm: Monitoring, segmented: str
) -> None:
    app = HistogramDataDriftApplication(drift_report="never")
    first, second = past_window(70), past_window(60)
    for w in (first, second):
        mm.record_events("shop", traffic(w, 2000, seed=w.start.minute))
        mm.run_window([app], w)
    mm.run_window([app], second)
    per_window = 2 * (1 + len(COUNTRIES))  # two results, endpoint-wide and per segment
    assert len(mm.results.results(segmented, segment=None)) == 2 * per_window
    assert len(mm.results.results(segmented)) == 4  # endpoint-wide only by default
    latest = mm.results.latest_results(segmented, segment=None)
    assert len(latest) == per_window and {r.window_start for r in latest} == {second.start}
    de = segment_key({"country": "DE"})
    assert {r.segment for r in mm.results.latest_results(segmented, segment=de)} == {de}
    with mm.engine.connect() as conn:
        view_rows = conn.execute(sa.text("SELECT count(*) FROM mm_latest_results")).scalar_one()
    assert view_rows == per_window


def test_mm_results_lists_every_segment(
    mm: Monitoring, segmented: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_dagster.cli import main

    window = past_window(60)
    mm.record_events("shop", traffic(window, 1000, seed=12))
    mm.run_window([HistogramDataDriftApplication(drift_report="never")], window)
    assert main(["results", "--endpoint", "shop", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["segment"], r["name"]) for r in rows} == {
        (label, name) for label in ["", *(f"country={c}" for c in COUNTRIES)] for name in DRIFT_RESULTS
    }


class LogsAnArtifact(ModelMonitoringApplicationBase):
    NAME = "logs-an-artifact"

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        monitoring_context.log_artifact("rows", body=str(len(monitoring_context.sample_df)))


def test_segments_keep_their_own_artifacts(mm: Monitoring, segmented: str) -> None:
    """A unique-per-endpoint artifact of a segment run does not overwrite the endpoint's."""
    window = past_window(60)
    mm.record_events("shop", traffic(window, 1000, seed=13))
    (report,) = mm.run_window([LogsAnArtifact()], window)
    assert len(report.artifacts) == 1 + len(COUNTRIES)
    bodies = sorted(int(Path(uri.removeprefix("file://")).read_text()) for uri in report.artifacts.values())
    assert bodies[-1] == 1000 and sum(bodies[:-1]) == 1000  # the whole, then its segments


class FailsInOneSegment(ModelMonitoringApplicationBase):
    NAME = "fails-in-de"

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        if monitoring_context.segment == {"country": "DE"}:
            raise ValueError("no model for DE")
        return {"rows": float(len(monitoring_context.sample_df))}


def test_a_failure_in_one_segment_is_recorded_for_it_alone(mm: Monitoring, segmented: str) -> None:
    window = past_window(60)
    mm.record_events("shop", traffic(window, 2000, seed=6))
    (report,) = mm.run_window([FailsInOneSegment()], window)
    assert report.failures == {}
    assert list(report.segment_failures[segmented]) == [segment_key({"country": "DE"})]
    (failure,) = mm.results.failures()
    assert failure.segment == segment_key({"country": "DE"})
    assert "segment country=DE" in failure.error and "no model for DE" in failure.error
    assert len(mm.results.metrics(segment=None)) == len(COUNTRIES)  # endpoint-wide and 9 segments


def test_a_segment_column_missing_from_the_events_warns_and_keeps_endpoint_wide_results(
    mm: Monitoring, segmented: str, caplog: pytest.LogCaptureFixture
) -> None:
    window = past_window(60)
    mm.record_events("shop", traffic(window, 1000, seed=7))
    events = {segmented: mm.read_window(window)[segmented].drop(columns=["country"])}
    with caplog.at_level(logging.WARNING, logger="mm_dagster.runner"):
        (report,) = mm.run_window([HistogramDataDriftApplication(drift_report="never")], window, events)
    assert "segment columns ['country'] missing from the events" in caplog.text
    assert "'shop'" in caplog.text
    assert report.segment_outputs == {} and report.failures == {}
    assert {r.name for r in mm.results.results(segmented, segment=None)} == {"general_drift", "feature_drift"}


def test_few_rows_in_a_segment_are_irrelevant(mm: Monitoring, segmented: str) -> None:
    window = past_window(60)
    mm.record_events("shop", traffic(window, 400, seed=8))  # AU is 3%: about 12 rows
    mm.run_window([HistogramDataDriftApplication(min_window_rows=30, drift_report="never")], window)
    drift = by_segment(mm.results.results(segmented, segment=None), "feature_drift")
    assert drift["country=AU"].status == ResultStatusApp.irrelevant
    assert drift[""].status != ResultStatusApp.irrelevant


class EndpointWideOnly(SegmentRecorder):
    NAME = "endpoint-wide-only"
    run_per_segment = False


def test_an_app_may_opt_out_of_segments(mm: Monitoring, segmented: str) -> None:
    window = past_window(60)
    mm.record_events("shop", traffic(window, 500, seed=9))
    app = EndpointWideOnly()
    mm.run_window([app], window)
    assert [s for s, *_ in app.seen] == [None]


# -- storage: old databases --------------------------------------------------------------------

PRE_SEGMENTS_DB = Path(__file__).parent / "data" / "pre_segments_mm.db"


def test_a_database_from_before_segments_is_migrated(tmp_path: Path, isolated_home: Path) -> None:
    """`pre_segments_mm.db` was written by the code before segments (one endpoint, two windows
    of histogram-drift results): its rows become endpoint-wide rows, the views are rebuilt."""
    path = tmp_path / "old.db"
    shutil.copy(PRE_SEGMENTS_DB, path)
    url = f"sqlite:///{path}"
    before = sa.create_engine(url)
    with before.connect() as conn:
        assert "segment" not in {c["name"] for c in sa.inspect(conn).get_columns("mm_results")}
        old_rows = conn.execute(sa.text("SELECT count(*) FROM mm_results")).scalar_one()
        old_latest = conn.execute(sa.text("SELECT count(*) FROM mm_latest_metrics")).scalar_one()
    before.dispose()
    with Monitoring(home=str(isolated_home), database_url=url, clock=fixed_clock(NOW)) as mm:
        ep = mm.get_endpoint("legacy")
        assert ep.segment_columns == []
        stored = mm.results.results(ep.id)
        assert len(stored) == old_rows == 4 and {r.segment for r in stored} == {""}
        assert len(mm.results.latest_metrics(ep.id)) == old_latest == 3
        inspector = sa.inspect(mm.engine)
        for table in ("mm_results", "mm_metrics", "mm_app_failures"):
            assert "segment" in inspector.get_pk_constraint(table)["constrained_columns"]
        assert {i["name"] for i in inspector.get_indexes("mm_results")} == {"ix_mm_results_window"}
        # The old endpoint takes segments on its next reference; re-runs replace, never duplicate.
        mm.update_reference("legacy", _legacy_reference(), segment_columns=["c0"], max_segments=2)
        window = Window.containing(NOW - timedelta(minutes=50), 10)
        events = {ep.id: _legacy_reference().head(300).assign(timestamp=pd.Timestamp(window.start))}
        app = HistogramDataDriftApplication(drift_report="never")
        mm.run_window([app], window, events)
        mm.run_window([app], window, events)
        rows = mm.results.results(ep.id, start=window.start, end=window.end, segment=None)
        assert len(rows) == 3 * 4  # general, feature, prediction drift x endpoint-wide, web, mobile, other
    with Monitoring(home=str(isolated_home), database_url=url) as again:  # migrating twice: nothing
        assert len(again.results.results(segment=None)) == 4 - 2 + 12


def _legacy_reference() -> pd.DataFrame:
    from mm_dagster.simulation import reference_frame

    return reference_frame(2000, seed=1)


def test_the_migration_keeps_rows_of_columns_added_later(tmp_path: Path) -> None:
    """An even older results table (without the version columns) is migrated too."""
    url = f"sqlite:///{tmp_path / 'older.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE mm_metrics (endpoint_id VARCHAR(32) NOT NULL, app VARCHAR(128) NOT NULL, "
                "name VARCHAR(128) NOT NULL, window_start DATETIME NOT NULL, window_end DATETIME NOT NULL, "
                "value FLOAT NOT NULL, updated_at DATETIME NOT NULL, "
                "PRIMARY KEY (endpoint_id, app, name, window_start))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO mm_metrics VALUES ('e1', 'a', 'm', '2026-11-20 10:00:00.000000', "
                "'2026-11-20 10:10:00.000000', 1.5, '2026-11-20 10:11:00.000000')"
            )
        )
    engine.dispose()
    migrated = db.create_engine(url)
    with migrated.connect() as conn:
        row = conn.execute(sa.select(db.metrics)).one()._mapping
    migrated.dispose()
    assert (row["endpoint_id"], row["segment"], row["value"], row["model_version"]) == ("e1", "", 1.5, None)


# -- Dagster -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_dagster_run_records_per_segment_results_and_the_check_names_the_segment(
    mm: Monitoring, segmented: str, isolated_home: Path
) -> None:
    window = past_window(60)
    mm.record_events("shop", traffic(window, 4000, seed=11, de_shift=3.0))
    config = MonitoringConfig(
        apps=[HistogramDataDriftApplication(drift_report="never")], partitions_start="2026-11-01"
    )
    defs = build_definitions(config, resource=MonitoringResource(home=str(isolated_home)))
    with DagsterInstance.ephemeral() as instance:
        result = materialize_window(defs, window.key, instance, str(isolated_home))
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    evaluation = evaluations["feature_drift_within_thresholds"]
    assert evaluation.asset_key == AssetKey(["mm", "histogram-data-drift", "histogram-data-drift_results"])
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    metadata = {k: plain_value(v) for k, v in evaluation.metadata.items()}
    assert metadata["detected_endpoints"] == 0 and metadata["detected_segments"] == 1
    assert metadata["segments_analysed"] == len(COUNTRIES)
    assert "shop [country=DE]: feature_drift detected" in metadata["flagged"]
    assert metadata["flagged_results"][0]["endpoint"] == "shop [country=DE]"
    drift = by_segment(mm.results.results(segmented, segment=None), "feature_drift")
    assert drift["country=DE"].status == ResultStatusApp.detected
    assert drift[""].status == ResultStatusApp.no_detection


def test_endpoint_segments_map_rows_like_the_reference() -> None:
    reference = pd.DataFrame({"c": ["a"] * 6 + ["b"] * 3 + ["c"]})
    kept = largest_segments(reference, ["c"], 1)
    from mm_dagster.stats.segment_stats import segment_references

    segments = EndpointSegments(["c"], segment_references(reference, ["c"], ["c"], 1))
    window = pd.DataFrame({"c": ["b", "a", "q"], "x": [1, 2, 3]})
    assert kept == [{"c": "a"}]
    assert [(segment_label(r.segment), list(rows["x"])) for r, rows in segments.split(window)] == [
        ("c=a", [2]),
        (f"c={OTHER}", [1, 3]),
    ]
    assert list(segments.rows_of(window, segment_key({"c": OTHER}))["x"]) == [1, 3]
    assert segments.missing_columns(window.drop(columns=["c"])) == ["c"]
