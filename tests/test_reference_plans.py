"""Stored reference drift plans: the bytes give back exactly what preparing the stats gives, runs
read them instead of the stats, and references stored without one get one."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.applications import HistogramDataDriftApplication, ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.drift_histograms import _describe
from mm_dagster.applications.endpoint_view import EndpointView, WindowStats, window_views
from mm_dagster.core import json_codec
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame
from mm_dagster.stats.drift import feature_drifts
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.reference_codec import (
    CODEC_VERSION,
    MAGIC,
    ReferencePlanError,
    plan_bytes,
    plan_from_bytes,
)
from mm_dagster.stats.reference_plan import PreparedFeature, prepare_reference
from mm_dagster.stats.union_binning import packed_grids_of_unions, prepared_bins, union_counts
from mm_dagster.storage import database as db
from mm_dagster.storage.window_histograms import WindowHistogramStore

from .conftest import NOW


def _assert_same_feature(expected: PreparedFeature, got: PreparedFeature) -> None:
    assert got.kind == expected.kind
    for name in ("reference_counts", "test_reference", "edges", "quantiles"):
        e, g = getattr(expected, name), getattr(got, name)
        assert (e is None) == (g is None), name
        if e is not None:
            np.testing.assert_array_equal(g, e, err_msg=name)
    assert got.std == expected.std or (np.isnan(got.std) and np.isnan(expected.std))  # type: ignore[arg-type]
    assert got.positions == expected.positions
    assert (
        got.reference_total
        == expected.reference_total
        == pytest.approx(float(expected.reference_counts.sum()))
    )
    assert (got.sketch is None) == (expected.sketch is None)
    if expected.sketch is not None:
        np.testing.assert_array_equal(got.sketch.bits, expected.sketch.bits)  # type: ignore[union-attr]
    assert (got.bins is None) == (expected.bins is None)
    if expected.bins is not None:
        for name in ("edges", "drift_edges", "union", "histogram_of_union", "drift_of_union"):
            np.testing.assert_array_equal(getattr(got.bins, name), getattr(expected.bins, name), err_msg=name)
        assert got.bins.at_max == expected.bins.at_max  # type: ignore[union-attr]
        assert (got.grid.low, got.grid.scale) == (expected.grid.low, expected.grid.scale)  # type: ignore[union-attr]
        np.testing.assert_array_equal(got.grid.table, expected.grid.table)  # type: ignore[union-attr]
        assert got.grid.table.dtype == expected.grid.table.dtype  # type: ignore[union-attr]


@st.composite
def references(draw: st.DrawFn) -> pd.DataFrame:
    """Numeric columns (continuous, with NaN, constant, a few atoms) and categorical ones (few
    values, many rare ones: a sketch), of a few to a few thousand rows."""
    rows = draw(st.integers(2, 3000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frame = {}
    for i, kind in enumerate(
        draw(
            st.lists(
                st.sampled_from(["normal", "nan", "constant", "atoms", "few", "many"]), min_size=1, max_size=6
            )
        )
    ):
        if kind == "normal":
            frame[f"c{i}"] = rng.normal(draw(st.floats(-1e6, 1e6)), draw(st.floats(1e-3, 1e3)), rows)
        elif kind == "nan":
            values = rng.normal(0, 1, rows)
            values[rng.random(rows) < 0.3] = np.nan
            frame[f"c{i}"] = values
        elif kind == "constant":
            frame[f"c{i}"] = np.full(rows, draw(st.floats(-1e6, 1e6)))
        elif kind == "atoms":
            frame[f"c{i}"] = rng.choice([0.0, 1.0, 2.5], rows)
        elif kind == "few":
            frame[f"c{i}"] = rng.choice(["a", "b", "c"], rows)
        else:
            frame[f"c{i}"] = [f"v{n}" for n in rng.integers(0, rows, rows)]
    return pd.DataFrame(frame)


@settings(max_examples=60, deadline=None)
@given(references())
def test_a_plan_gives_back_what_preparing_the_stats_gives(reference: pd.DataFrame) -> None:
    stats = json_codec.loads(json_codec.dumps(compute_feature_stats(reference)))  # as stored
    expected = prepare_reference(stats)
    got = plan_from_bytes(plan_bytes(stats))
    assert list(got) == list(expected)
    assert got.stats_features == expected.stats_features == len(stats)
    for name in expected:
        _assert_same_feature(expected[name], got[name])
    gridded = tuple(n for n, f in expected.items() if f.has_grid)
    stored_split, made_split = got.packed_split(gridded), expected.packed_split(gridded)
    for part in ("histogram_of_union", "drift_of_union", "at_max", "histogram_ends", "drift_ends"):
        np.testing.assert_array_equal(getattr(stored_split, part), getattr(made_split, part), err_msg=part)
    described = _describe(stats)
    assert got.described is not None
    assert {f: (d.labels, d.summary) for f, d in got.described.items()} == {
        f: (described[f].labels, described[f].summary) for f in expected
    }
    window = reference.sample(frac=1.0, replace=True, random_state=0)
    plain, planned = feature_drifts(stats, window), feature_drifts(got, window)
    assert [(d.feature, d.tvd, d.hellinger, d.kld) for d in planned] == [
        (d.feature, d.tvd, d.hellinger, d.kld) for d in plain
    ]


def test_stats_from_before_mass_following_bins_and_empty_stats() -> None:
    stats = compute_feature_stats(reference_frame(500, seed=2))
    old = {
        f: {k: v for k, v in s.items() if k not in ("drift_edges", "drift_counts", "quantiles")}
        for f, s in stats.items()
    }
    got, expected = plan_from_bytes(plan_bytes(old)), prepare_reference(old)
    for name in expected:
        _assert_same_feature(expected[name], got[name])
    empty = plan_from_bytes(plan_bytes({}))
    assert not empty and empty.stats_features == 0


def test_the_packed_grids_of_a_plan_are_the_ones_made_one_by_one() -> None:
    rng = np.random.default_rng(4)
    stats = compute_feature_stats(pd.DataFrame({f"x{i}": rng.lognormal(i, 1 + i, 800) for i in range(4)}))
    bins = [prepared_bins(np.asarray(s["hist"][1]), np.asarray(s["drift_edges"])) for s in stats.values()]
    unions = [b.union for b, _ in bins]
    starts = np.concatenate(([0], np.cumsum([u.size for u in unions])))
    packed = packed_grids_of_unions(np.concatenate(unions), starts)
    for (_, expected), got in zip(bins, packed.grids(), strict=True):
        np.testing.assert_array_equal(got.edges, expected.edges)
        assert (got.low, got.scale) == (expected.low, expected.scale)
        np.testing.assert_array_equal(got.table, expected.table)
    from_plan = plan_from_bytes(plan_bytes(stats)).packed_grids(tuple(stats))
    for name in ("edges", "edge_starts", "lows", "scales", "tables", "table_starts"):
        np.testing.assert_array_equal(getattr(from_plan, name), getattr(packed, name), err_msg=name)
    with pytest.raises(ValueError, match="unions must hold"):
        packed_grids_of_unions(np.zeros(0), np.array([0, 0]))


PREFIX_SIZE = 32  # magic, version, padding, three lengths


def test_bytes_of_another_codec_version_are_refused_by_name() -> None:
    data = plan_bytes(compute_feature_stats(reference_frame(200, seed=1)))
    assert data.startswith(MAGIC)
    entries_at = PREFIX_SIZE + int.from_bytes(data[8:16], "little")
    for bad, says in (
        (data[:5], "at least"),
        (b"XXXX" + data[4:], "not a plan"),
        (data[:4] + bytes([CODEC_VERSION + 1]) + data[5:], "not a plan"),
        (data[:-8], "a damaged plan"),  # an array cut short
        (data[:PREFIX_SIZE] + b"!" + data[PREFIX_SIZE + 1 :], "a damaged plan"),  # the header's JSON
        (data[:entries_at] + b"!" + data[entries_at + 1 :], "a damaged plan"),  # the entries' JSON
    ):
        with pytest.raises(ReferencePlanError, match=says):
            plan_from_bytes(bad)
    assert plan_from_bytes(data)  # read-only views of the bytes
    assert not next(iter(plan_from_bytes(data).values())).reference_counts.flags.writeable


def _plans(mm: Monitoring) -> dict[tuple[str, int], int]:
    with mm.engine.connect() as conn:
        t = db.reference_plans
        return {(r.endpoint_id, r.version): r.codec for r in conn.execute(sa.select(t))}


def test_every_stored_reference_has_its_plan_and_deleting_the_endpoint_removes_them(
    mm: Monitoring, endpoint: ModelEndpoint
) -> None:
    assert _plans(mm) == {(endpoint.id, 1): CODEC_VERSION}
    updated = mm.endpoints.update_reference(endpoint.id, reference_frame(3000, seed=9))
    assert _plans(mm) == {(endpoint.id, 1): CODEC_VERSION, (endpoint.id, 2): CODEC_VERSION}
    (stored,) = mm.endpoints.for_window([endpoint.id])
    assert stored.endpoint.feature_stats == {} and stored.endpoint.reference_version == 2
    texts = mm.endpoints.stats_texts({endpoint.id: 2})
    assert json_codec.loads(texts[endpoint.id]) == updated.feature_stats
    assert json_codec.loads(mm.endpoints.stats_texts({endpoint.id: 1})[endpoint.id]) == endpoint.feature_stats
    assert mm.endpoints.stats_texts({endpoint.id: 3}) == {}
    with pytest.raises(MonitoringError, match=f"endpoint {endpoint.id}: .* reference version 3"):
        WindowStats(mm.endpoints, {endpoint.id: 3}).text(endpoint.id)
    assert stored.plan is not None and list(plan_from_bytes(stored.plan)) == list(updated.feature_stats)
    mm.endpoints.delete(endpoint.id)
    assert _plans(mm) == {}


def test_a_window_parses_no_stats_for_the_drift_app_and_a_user_app_reads_them(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    (view,) = window_views(mm.endpoints, [endpoint.id]).values()
    assert view.plan is not None and "endpoint" not in vars(view)  # stats not parsed
    assert view.loaded.feature_stats == {}
    assert view.endpoint.feature_stats == mm.endpoints.get(endpoint.id).feature_stats

    class ReadsStats(ModelMonitoringApplicationBase):
        NAME = "reads-stats"

        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> object:
            return ModelMonitoringApplicationMetric("features", len(monitoring_context.feature_stats))

    mm.record_events(endpoint.name, traffic_frame(400, window.start, window.end, seed=4))
    mm.run_window([ReadsStats()], window)
    (metric,) = mm.results.metrics(app="reads-stats")
    assert metric.value == len(endpoint.feature_stats)


def _outputs(mm: Monitoring) -> list[tuple[str, str, str]]:
    results = [(r.name, repr(r.value), json_codec.dumps(r.extra_data)) for r in mm.results.results()]
    metrics = [(m.name, repr(m.value), "") for m in mm.results.metrics()]
    return sorted(results + metrics)


def test_references_stored_without_a_plan_get_one_and_the_same_results(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    mm.record_events(endpoint.name, traffic_frame(500, window.start, window.end, seed=5))
    histograms = WindowHistogramStore(mm.engine)
    mm.run_window([HistogramDataDriftApplication()], window)
    with_plan = _outputs(mm), histograms.window(endpoint.id, "histogram-data-drift", window.start)
    assert with_plan[0] and with_plan[1] is not None
    with mm.engine.begin() as conn:
        conn.execute(db.reference_plans.delete())
    mm.run_window([HistogramDataDriftApplication()], window)
    assert (_outputs(mm), histograms.window(endpoint.id, "histogram-data-drift", window.start)) == with_plan
    assert _plans(mm) == {(endpoint.id, 1): CODEC_VERSION}  # made and stored by the run


def test_a_plan_of_another_codec_is_ignored_and_the_stats_prepared(
    mm: Monitoring, endpoint: ModelEndpoint
) -> None:
    (stored,) = mm.endpoints.for_window([endpoint.id])
    assert stored.plan is not None
    stats = WindowStats(mm.endpoints, {endpoint.id: 1})
    view = EndpointView(stored.endpoint, stats=stats, plan=b"MMRP\xff" + stored.plan[5:])
    assert view.plan is None
    assert view.endpoint.feature_stats == endpoint.feature_stats


def test_an_endpoint_from_before_reference_history_reads_its_own_stats(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    with mm.engine.begin() as conn:
        conn.execute(db.endpoint_references.delete())
        conn.execute(db.reference_plans.delete())
        conn.execute(db.endpoints.update().values(reference_version=None))
    texts = mm.endpoints.stats_texts({endpoint.id: 1})
    assert json_codec.loads(texts[endpoint.id]) == endpoint.feature_stats
    mm.record_events(endpoint.name, traffic_frame(300, window.start, window.end, seed=6))
    (report,) = mm.run_window([HistogramDataDriftApplication()], window)
    assert report.outputs[endpoint.id] and not report.failures
    assert _plans(mm) == {(endpoint.id, 1): CODEC_VERSION}


def test_a_damaged_stored_plan_falls_back_to_the_stats(
    mm: Monitoring, endpoint: ModelEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """A plan whose bytes were damaged after they were stored is not used: the window runs on
    the reference stats and gives what a run with the plan gives."""
    window = Window.containing(NOW - timedelta(hours=1), 10)
    mm.record_events(endpoint.name, traffic_frame(400, window.start, window.end, seed=5))
    app = HistogramDataDriftApplication()
    mm.run_window([app], window)
    clean = [(r.name, r.value, r.status) for r in mm.results.results(endpoint.id, app.name)]
    (stored,) = mm.endpoints.for_window([endpoint.id])
    mm.endpoints.store_plans({(endpoint.id, 1): stored.plan[:-8]})  # type: ignore[index]
    mm.run_window([HistogramDataDriftApplication()], window)  # an app that has not seen the plan
    assert [(r.name, r.value, r.status) for r in mm.results.results(endpoint.id, app.name)] == clean
    assert (
        "'fraud-model'" in caplog.text and "stored drift plan of reference version 1 not read" in caplog.text
    )


def test_a_plans_packed_sets_are_read_without_making_its_features() -> None:
    stats = compute_feature_stats(reference_frame(300, numeric_features=5, categorical_features=2, seed=3))
    plan, expected = plan_from_bytes(plan_bytes(stats)), prepare_reference(stats)
    names = tuple(n for n in plan if n in plan.gridded)
    assert list(plan) == list(expected) and plan.gridded == expected.gridded and len(names) == 6
    counts, split, grids = plan.packed_counts(names), plan.packed_split(names), plan.packed_grids(names)
    window = np.random.default_rng(4).normal(0, 2, (1000, len(names)))
    window[::9, 0] = np.nan
    binned = plan.union_counts(window, names)  # on grids made for the window, from the plan's unions
    assert plan._features is None  # what a run of the packed path reads makes no feature
    np.testing.assert_array_equal(binned, union_counts(window, expected.packed_grids(names)))
    assert binned.sum() == window.size - np.isnan(window).sum()
    want = expected.packed_counts(names)
    for name in ("histograms", "histogram_ends", "tests", "drift_ends", "totals"):
        np.testing.assert_array_equal(getattr(counts, name), getattr(want, name), err_msg=name)
    for name in ("histogram_of_union", "drift_of_union", "at_max", "histogram_ends", "drift_ends"):
        np.testing.assert_array_equal(getattr(split, name), getattr(expected.packed_split(names), name))
    np.testing.assert_array_equal(grids.tables, expected.packed_grids(names).tables)
    assert repr(plan["c0"]) == repr(expected["c0"]) and plan._features is not None
    for name in names:  # each feature's own bins, taken from the packed split
        got, want = plan[name].bins, expected[name].bins
        for part in ("edges", "drift_edges", "union", "histogram_of_union", "drift_of_union"):
            np.testing.assert_array_equal(getattr(got, part), getattr(want, part), err_msg=f"{name} {part}")
        assert got.at_max == want.at_max
