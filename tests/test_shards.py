"""Sharded windows: the shard arithmetic, the stored report, and the same results, checks and
alerts for one shard in process as for four shards in four step processes."""

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    execute_job,
    instance_for_test,
    reconstructable,
)
from hypothesis import given
from hypothesis import strategies as st

from mm_dagster.applications import HistogramDataDriftApplication, OperationalApplication
from mm_dagster.applications.endpoint_view import window_views
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationResult
from mm_dagster.core.results import AppFailure, StoredMetric, StoredResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.shards import (
    EVERY_ENDPOINT,
    KEY_SPACE,
    MAX_SHARDS,
    Shard,
    all_shards,
    shard_key,
    shard_of,
)
from mm_dagster.core.stored_report import detail_keys, stored_window_report
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.runner import run_apps_on_window
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from mm_dagster.storage.endpoint_registry import StoredEndpoint

from .analysis_snapshot import analysis_snapshot
from .conftest import NOW, materialize_window, past_window
from .sharded_location import sharded_config, sharded_job

ENDPOINT_IDS = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(st.lists(ENDPOINT_IDS, max_size=50), st.integers(1, MAX_SHARDS))
def test_every_endpoint_is_in_exactly_one_shard(ids: list[str], count: int) -> None:
    shards = all_shards(count)
    for endpoint_id in ids:
        assert [s.index for s in shards if s.holds(endpoint_id)] == [shard_of(endpoint_id, count)]
    parts = [s.part_of(dict.fromkeys(ids, 1)) for s in shards]
    assert sorted(e for part in parts for e in part) == sorted(set(ids))


@given(st.lists(ENDPOINT_IDS, max_size=50), st.integers(1, MAX_SHARDS))
def test_a_shard_is_the_range_of_keys_it_holds(ids: list[str], count: int) -> None:
    shards = all_shards(count)
    ranges = [s.key_range for s in shards]
    assert ranges[0][0] == 0 and ranges[-1][1] == KEY_SPACE
    assert all(high == low for (_, high), (low, _) in itertools.pairwise(ranges))
    for shard in shards:  # the keys at each edge land on the right side of it
        low, high = shard.key_range
        assert (low * count) >> 63 == shard.index and ((high - 1) * count) >> 63 == shard.index
    for endpoint_id in ids:
        key = shard_key(endpoint_id)
        holding = [s for s in shards if s.key_range[0] <= key < s.key_range[1]]
        assert [s.index for s in holding] == [shard_of(endpoint_id, count)]


def test_shards_are_stable_across_processes_and_balanced() -> None:
    ids = [f"{i:032x}" for i in range(4000)]
    here = [shard_of(e, 4) for e in ids]
    # Another interpreter with another hash seed (Python's own hash() would differ) agrees.
    script = (
        "from mm_dagster.core.shards import shard_of; print([shard_of(f'{i:032x}', 4) for i in range(4000)])"
    )
    there = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONHASHSEED": "123"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(there) == here
    sizes = [len(s.select(ids)) for s in all_shards(4)]
    assert min(sizes) > 900 and sum(sizes) == 4000
    assert EVERY_ENDPOINT.select(ids) == ids


@pytest.mark.parametrize("count", [0, -1, MAX_SHARDS + 1, 2.0, True])
def test_a_bad_shard_count_is_refused(count: object) -> None:
    with pytest.raises(MonitoringError, match="shards must be an integer"):
        Shard(0, count)  # type: ignore[arg-type]


def test_a_shard_index_outside_the_count_is_refused() -> None:
    with pytest.raises(MonitoringError, match=r"shard index must be in 0\.\.3"):
        Shard(4, 4)


def test_the_stored_report_counts_a_failure_over_the_results_it_kept() -> None:
    window = past_window()
    t0, t1 = window.start, window.end
    results = [
        StoredResult(
            "e1", "app", "drift", t0, t1, ResultKindApp.data_drift, ResultStatusApp.detected, 0.9, {}
        ),
        StoredResult(
            "e2", "app", "drift", t0, t1, ResultKindApp.data_drift, ResultStatusApp.no_detection, 0.1, {}
        ),
        StoredResult(
            "e1",
            "app",
            "drift",
            t0,
            t1,
            ResultKindApp.data_drift,
            ResultStatusApp.no_detection,
            0.2,
            {},
            segment="country=DE",
        ),
    ]
    metrics = [
        StoredMetric("e1", "app", "rows", t0, t1, 10.0),
        StoredMetric("e3", "app", "rows", t0, t1, 3.0),
    ]
    failures = [AppFailure("e2", "app", t0, t1, "e2 broke")]
    report = stored_window_report("app", window, results, metrics, failures, {"e1": "one", "e2": "two"})
    assert sorted(report.outputs) == ["e1", "e3"]
    assert report.outputs["e1"][0] == [
        ModelMonitoringApplicationResult("drift", 0.9, ResultKindApp.data_drift, ResultStatusApp.detected)
    ]
    assert report.outputs["e3"][0] == []
    assert [(m.name, m.value) for m in report.outputs["e1"][1]] == [("rows", 10.0)]
    assert report.failures == {"e2": "e2 broke"}
    assert list(report.segment_outputs) == ["e1"] and list(report.segment_outputs["e1"]) == ["country=DE"]
    assert report.endpoint_names == {"e1": "one", "e2": "two", "e3": "e3"}
    assert report.count(ResultStatusApp.detected) == 1


def seed(home: Path, window: Window, endpoints: int = 12) -> None:
    with Monitoring(home=str(home), clock=fixed_clock(NOW)) as mm:
        for i in range(endpoints):
            name = f"model-{i}"
            mm.create_endpoint(name, reference=reference_frame(2000, seed=i), label_names=["prediction"])
            shape = TrafficShape(mean_shift=3.0, drifted_features=3) if i % 3 == 0 else TrafficShape()
            events = traffic_frame(400, window.start, window.end, shape, seed=100 + i)
            mm.record_events(name, events.iloc[:200])  # two files per endpoint: 24 in all, so the
            mm.record_events(name, events.iloc[200:])  # window is compacted and shards read row groups


def check_results(instance: DagsterInstance, run_id: str) -> list[tuple[str, str, bool, str]]:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]  # type: ignore[union-attr]
    return sorted(
        (e.asset_key.to_user_string(), e.check_name, e.passed, str(e.metadata.get("flagged")))
        for e in evaluations
    )


@pytest.mark.slow
def test_four_shards_in_four_processes_store_what_one_shard_in_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = past_window(60)
    one, four = tmp_path / "one", tmp_path / "four"
    seed(one, window)
    shutil.copytree(one, four)  # the same endpoints (ids) and event files
    with Monitoring(home=str(four)) as mm:  # merged in 2 parts: each of the 4 shards reads a key range
        assert [c.endpoints for s in all_shards(2) for c in mm.compact_window(window, s, min_files=2)] == [
            len(s.select(mm.endpoints.names())) for s in all_shards(2) if s.select(mm.endpoints.names())
        ]

    single = build_definitions(sharded_config(1, executor=False), resource=MonitoringResource(home=str(one)))
    with instance_for_test() as instance:
        result = materialize_window(single, window.key, instance, str(one))
        single_checks = check_results(instance, result.run_id)

    monkeypatch.setenv("MM_HOME", str(four))
    monkeypatch.setenv("SHARDS", "4")
    with (
        instance_for_test() as instance,
        execute_job(
            reconstructable(sharded_job), instance, tags={"dagster/partition": window.key}
        ) as sharded,
    ):
        assert sharded.success
        steps = {e.step_key for e in sharded.all_events if e.event_type == DagsterEventType.STEP_SUCCESS}
        assert {f"mm__analysis__shard_{i}_of_4" for i in range(1, 5)} <= steps
        processes = {e.pid for e in sharded.all_events if e.event_type == DagsterEventType.STEP_START}
        assert len(processes) > 1  # the multiprocess executor ran the steps in processes of their own
        sharded_checks = check_results(instance, sharded.run_id)
        shard_metadata = [
            instance.fetch_materializations(AssetKey(["mm", "analysis", f"shard_{i}_of_4"]), limit=1)
            .records[0]
            .asset_materialization.metadata["endpoints"]  # type: ignore[union-attr]
            .value
            for i in range(1, 5)
        ]
    assert sum(shard_metadata) == 12 and max(shard_metadata) < 12  # type: ignore[arg-type]
    assert len(list(one.rglob("slot-*.parquet"))) == 1  # its shard merged the 24 files first
    assert 1 <= len(list(four.rglob("slot-*.parquet"))) <= 2
    assert sharded_checks == single_checks
    assert any(not passed for _, _, passed, _ in single_checks)  # drift and failures were found
    snapshot_one = analysis_snapshot(f"sqlite:///{one}/mm.db")
    assert snapshot_one == analysis_snapshot(f"sqlite:///{four}/mm.db")
    assert snapshot_one["mm_results"] and snapshot_one["mm_app_failures"] and snapshot_one["mm_notifications"]


STATUSES = st.sampled_from(list(ResultStatusApp))


@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),
            st.sampled_from(["", "c=1"]),
            st.sampled_from(["a", "b"]),
            STATUSES,
            st.sampled_from([0.1, 0.5, 0.9, 1.0]),
        ),
        unique_by=lambda r: r[:3],
        max_size=80,
    ),
    st.integers(1, 20),
)
def test_a_report_read_without_most_extra_data_flags_what_a_full_one_does(
    rows: list[tuple[int, str, str, ResultStatusApp, float]], limit: int
) -> None:
    window = past_window()
    full = [
        StoredResult(
            f"e{e:02d}",
            "app",
            name,
            window.start,
            window.end,
            ResultKindApp.data_drift,
            status,
            value,
            {"drifting_features": [f"f{e}", name]},
            segment=segment,
        )
        for e, segment, name, status, value in rows
    ]
    lean = [StoredResult(**{**r.__dict__, "extra_data": {}}) for r in full]
    keys = detail_keys(lean)
    details = {
        (r.endpoint_id, r.segment, r.name): r.extra_data
        for r in full
        if (r.endpoint_id, r.segment, r.name) in keys
    }
    names = {f"e{e:02d}": f"model-{e:02d}" for e in range(31)}
    with_all = stored_window_report("app", window, full, [], [], names)
    with_some = stored_window_report("app", window, lean, [], [], names, extra_data=details)
    assert with_some.flagged(limit) == with_all.flagged(limit)
    # the `limit` worst, picked without ordering the rest, are the head of the whole ordering
    everything = with_all.flagged()
    assert with_all.flagged(limit) == everything[:limit] and with_all.flagged_count() == len(everything)
    assert everything == sorted(
        everything, key=lambda f: (-f.status, -f.value, f.endpoint, f.segment, f.result)
    )
    for name in ("a", "b"):
        assert with_some.of_result(name).flagged(limit) == with_all.of_result(name).flagged(limit)


@pytest.mark.parametrize("part_endpoints", [1, 5])
def test_a_window_analysed_in_parts_stores_what_one_read_of_it_does(
    tmp_path: Path, part_endpoints: int, caplog: pytest.LogCaptureFixture
) -> None:
    window = past_window(60)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    seed(whole, window)
    shutil.copytree(whole, parts)
    apps = [HistogramDataDriftApplication(), OperationalApplication()]
    with Monitoring(home=str(whole), clock=fixed_clock(NOW)) as mm:
        read_once = mm.run_window(apps, window, mm.read_window(window))
        expected = analysis_snapshot(mm.settings.database_url)
    with Monitoring(home=str(parts), clock=fixed_clock(NOW), analysis_part_endpoints=part_endpoints) as mm:
        shard = Shard(1, 2)
        pieces = mm.window_parts(window, shard)
        assert len(pieces) == -(-len(shard.select(mm.endpoints.names())) // part_endpoints)
        held = [[e for e in mm.endpoints.names() if p.holds(e)] for p in pieces]
        assert sorted(e for part in held for e in part) == sorted(shard.select(mm.endpoints.names()))
        in_parts = sum(len(mm.window_parts(window, s)) > 1 for s in all_shards(2))
        with caplog.at_level(logging.DEBUG, logger="mm_dagster.monitoring"):
            reports = [r for s in all_shards(2) for r in mm.run_window(apps, window, shard=s)]  # in parts
        assert analysis_snapshot(mm.settings.database_url) == expected
    reused = [int(m.split(": ")[1].split()[0]) for m in caplog.messages if "parts read into" in m]
    assert in_parts and len(reused) == in_parts  # each read in parts says how many parts reused memory
    if part_endpoints == 1:  # parts of one endpoint each, of equal events: later ones reuse it
        assert sum(reused) >= 1
    for app in apps:
        merged = [r for r in reports if r.app == app.name]
        (once,) = [r for r in read_once if r.app == app.name]
        assert sorted(e for r in merged for e in r.outputs) == sorted(once.outputs)
        assert {e: n for r in merged for e, n in r.endpoint_names.items()} == once.endpoint_names


def test_a_part_whose_results_cannot_be_stored_fails_the_analysis_after_the_parts_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = past_window(60)
    seed(tmp_path, window, endpoints=4)
    with Monitoring(home=str(tmp_path), clock=fixed_clock(NOW), analysis_part_endpoints=1) as mm:
        stored: list[list[str]] = []
        replace_window = mm.results.replace_window

        def second_fails(app: str, window: Window, outputs: dict[str, object], *args: object) -> None:
            if len(stored) == 1:
                raise OSError("results database unreachable")
            replace_window(app, window, outputs, *args)  # type: ignore[arg-type]
            stored.append(sorted(outputs))

        monkeypatch.setattr(mm.results, "replace_window", second_fails)
        pieces = mm.window_parts(window)
        assert len(pieces) >= 3
        with pytest.raises(OSError, match="results database unreachable"):
            mm.analyse_window([HistogramDataDriftApplication()], window)
        assert len(stored) == 1  # the first part's results are kept, none after the failure written
        monkeypatch.undo()
        kept = {r.endpoint_id for r in mm.results.results(app="histogram-data-drift", start=window.start)}
        assert sorted(kept) == stored[0]


def test_parts_of_a_window_share_each_apps_time_budget(tmp_path: Path) -> None:
    window = past_window(60)
    seed(tmp_path, window, endpoints=3)
    with Monitoring(home=str(tmp_path), clock=fixed_clock(NOW)) as mm:
        spent = {"histogram-data-drift": time.monotonic()}  # the budget an earlier part used up
        (report,) = run_apps_on_window(
            [HistogramDataDriftApplication()],
            window,
            mm.read_window(window),
            mm.endpoints,
            mm.results,
            mm.artifacts,
            deadlines=spent,
        )
        assert not report.outputs and len(report.failures) == 3
        assert all("timed out" in failure for failure in report.failures.values())
        with pytest.raises(MonitoringError, match="analysis_part_endpoints must be >= 1"):
            Monitoring(home=str(tmp_path), analysis_part_endpoints=0)


def test_views_loaded_by_the_caller_are_used_and_only_the_others_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = past_window(60)
    seed(tmp_path, window, endpoints=4)
    with Monitoring(home=str(tmp_path), clock=fixed_clock(NOW)) as mm:
        events = mm.read_window(window)
        ids = sorted(events)
        given = window_views(mm.endpoints, ids[:2])
        asked: list[list[str]] = []
        for_window = mm.endpoints.for_window

        def recorded(wanted: Sequence[str]) -> list[StoredEndpoint]:
            asked.append(sorted(wanted))
            return for_window(wanted)

        monkeypatch.setattr(mm.endpoints, "for_window", recorded)
        app = HistogramDataDriftApplication()
        (report,) = run_apps_on_window(
            [app], window, events, mm.endpoints, mm.results, mm.artifacts, views=given
        )
        assert asked == [ids[2:]]
        assert sorted(report.outputs) == ids and not report.failures
        asked.clear()
        (alone,) = run_apps_on_window([app], window, events, mm.endpoints, mm.results, mm.artifacts)
        assert asked == [ids]
        assert report.outputs == alone.outputs


@pytest.mark.parametrize("plans_read", [True, False])
def test_plans_are_decoded_on_the_read_thread_when_an_app_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plans_read: bool
) -> None:
    from mm_dagster.applications import endpoint_view

    window = past_window(60)
    seed(tmp_path, window, endpoints=4)
    decoded_on: list[str] = []
    plan_from_bytes = endpoint_view.plan_from_bytes

    def recorded(data: bytes) -> object:
        decoded_on.append(threading.current_thread().name)
        return plan_from_bytes(data)

    monkeypatch.setattr(endpoint_view, "plan_from_bytes", recorded)
    app = HistogramDataDriftApplication() if plans_read else OperationalApplication()
    assert app.reads_reference_plans is plans_read
    with Monitoring(home=str(tmp_path), clock=fixed_clock(NOW), analysis_part_endpoints=2) as mm:
        (report,) = mm.analyse_window([app], window)
    assert len(report.outputs) == 4 and not report.failures
    if plans_read:  # every endpoint's plan, once, beside the apps
        assert len(decoded_on) == 4 and all(name.startswith("mm-reads") for name in decoded_on)
    else:
        assert decoded_on == []


def test_a_part_that_cannot_be_read_fails_the_analysis_after_the_parts_before_it_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = past_window(60)
    seed(tmp_path, window)  # 12 endpoints in 12 key ranges: at least two hold some, all but surely
    with Monitoring(home=str(tmp_path), clock=fixed_clock(NOW), analysis_part_endpoints=1) as mm:
        ids = list(mm.endpoints.names())
        pieces = mm.window_parts(window)
        holding = [i for i, p in enumerate(pieces) if p.select(ids)]  # a key range may hold none
        assert len(holding) >= 2
        unreadable = pieces[holding[1]]  # the second part with endpoints
        read_window = mm._read_window
        read: list[Shard] = []

        def one_unreadable(window: Window, part: Shard, *args: object) -> object:
            read.append(part)
            if part == unreadable:
                raise OSError(f"events of {part.label} unreadable")
            return read_window(window, part, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(mm, "_read_window", one_unreadable)
        with pytest.raises(OSError, match=f"events of {unreadable.label} unreadable"):
            mm.analyse_window([HistogramDataDriftApplication()], window)
        assert read == pieces[: holding[1] + 1]  # none read after the failure
        monkeypatch.undo()
        kept = {r.endpoint_id for r in mm.results.results(app="histogram-data-drift", start=window.start)}
        assert kept == set(pieces[holding[0]].select(ids))  # the parts before it are stored
