"""Gating (issue 11 §6): k-of-n persistence and episodes (pure), the blocking result gate on a
user asset, and the sensor that requests a job once per episode; the demo's code location."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, Definitions, build_sensor_context, instance_for_test, materialize
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.gating import fraud_candidate_model, fraud_gate, fraud_promotion, fraud_retrained_model
from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.gating import PersistenceRule, decide, episode_start
from mm_dagster.core.outputs import ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import build_persistence_sensor, build_result_gate
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .conftest import NOW, past_window

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
DRIFT = "histogram-data-drift"


def at(i: int) -> datetime:
    return T0 + STEP * i


def runs(flags: list[bool]) -> int:
    """Maximal stretches of True."""
    return sum(1 for i, f in enumerate(flags) if f and (i == 0 or not flags[i - 1]))


# -- pure rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 3), (4, 3), (1, 0), (True, 2), (1.5, 3)])
def test_a_rule_needs_1_le_k_le_n(k: object, n: object) -> None:
    with pytest.raises(MonitoringError, match="k <= n"):
        PersistenceRule(k, n)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=40), st.integers(1, 6), st.integers(0, 5))
def test_persistence_matches_counting_the_last_n(detected: list[bool], n: int, extra: int) -> None:
    k = min(n, 1 + extra)
    rule = PersistenceRule(k, n)
    expected = [sum(detected[max(0, i - n + 1) : i + 1]) >= k for i in range(len(detected))]
    assert rule.persists(detected) == expected


def test_episode_start_is_the_first_window_of_the_trailing_stretch() -> None:
    rule = PersistenceRule(2, 3)
    history = [(at(i), d) for i, d in enumerate([True, True, False, False, True, False, True, True])]
    assert episode_start(history, rule) == at(6)
    assert episode_start(history[:6], rule) is None
    assert episode_start(history[:3], rule) == at(1)
    assert episode_start([], rule) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=40), st.integers(1, 5), st.integers(0, 4))
def test_one_action_per_episode_as_windows_arrive(detected: list[bool], n: int, extra: int) -> None:
    """A sensor ticking after every window acts exactly once per maximal stretch where the
    result persists, each time at the stretch's first window."""
    rule = PersistenceRule(min(n, 1 + extra), n)
    history = [(at(i), d) for i, d in enumerate(detected)]
    active = None
    acted = []
    for i in range(1, len(history) + 1):
        decision = decide(active, history[:i], rule)
        active = decision.active_since
        if decision.act:
            acted.append(decision.active_since)
    persists = rule.persists(detected)
    assert len(acted) == runs(persists)
    assert acted == [at(i) for i, p in enumerate(persists) if p and (i == 0 or not persists[i - 1])]


def test_an_episode_longer_than_the_history_is_not_acted_on_again() -> None:
    rule = PersistenceRule(2, 3)
    first = decide(None, [(at(i), True) for i in range(3)], rule)
    assert first.act and first.active_since == at(1)
    # The horizon moved: the history now starts long after the episode began.
    later = decide(first.active_since, [(at(i), True) for i in range(50, 60)], rule)
    assert not later.act and later.active_since == at(1)


def test_a_recovery_between_ticks_starts_a_new_episode() -> None:
    rule = PersistenceRule(2, 3)
    flags = [True, True, False, False, False, True, True]
    decision = decide(at(1), [(at(i), f) for i, f in enumerate(flags)], rule)
    assert decision.act and decision.active_since == at(6)


# -- the gate on a user asset ------------------------------------------------------------------


def store(
    mm: Monitoring, endpoint_id: str, window: Window, status: ResultStatusApp, name: str = "general_drift"
) -> None:
    mm.results.replace_window(
        DRIFT,
        window,
        {endpoint_id: ([ModelMonitoringApplicationResult(name, 0.8, ResultKindApp.data_drift, status)], [])},
    )


def promote(home: str, instance: DagsterInstance):  # type: ignore[no-untyped-def]
    return materialize(
        [fraud_candidate_model, fraud_promotion, fraud_gate],
        instance=instance,
        resources={"mm": MonitoringResource(home=home)},
        raise_on_error=False,
    )


def promoted(result) -> bool:  # type: ignore[no-untyped-def]
    return bool(result.asset_materializations_for_node("fraud_promotion"))


def gate_result(result):  # type: ignore[no-untyped-def]
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_the_promotion_does_not_run_after_a_drifted_window_and_runs_after_a_calm_one(mm: Monitoring) -> None:
    """The demo's gate, on windows analysed by the real drift app."""
    mm.create_endpoint("fraud-detector", reference=reference_frame(5000, seed=1), label_names=["prediction"])
    drifted, calm = past_window(60), past_window(30)
    shifted = TrafficShape(mean_shift=1.5, drifted_features=2)
    mm.record_events("fraud-detector", traffic_frame(400, drifted.start, drifted.end, shifted, seed=2))
    mm.record_events("fraud-detector", traffic_frame(400, calm.start, calm.end, seed=3))
    home = mm.settings.home
    with instance_for_test() as instance:
        assert promoted(promote(home, instance))  # nothing analysed yet: no result, no block
        mm.run_window([HistogramDataDriftApplication()], drifted)
        blocked = promote(home, instance)
        assert not blocked.success and not promoted(blocked)
        assert blocked.asset_materializations_for_node("fraud_candidate_model")
        evaluation = gate_result(blocked)
        assert not evaluation.passed and "detected" in evaluation.metadata["reason"].value
        mm.run_window([HistogramDataDriftApplication()], calm)
        released = promote(home, instance)
        assert released.success and promoted(released) and gate_result(released).passed


def test_gate_options(mm: Monitoring, endpoint) -> None:  # type: ignore[no-untyped-def]
    home = mm.settings.home
    store(mm, endpoint.id, past_window(60), ResultStatusApp.potential_detection)
    strict = build_result_gate(
        fraud_candidate_model,
        endpoint="fraud-model",
        results=["general_drift"],
        fail_on=ResultStatusApp.potential_detection,
        name="strict_gate",
    )
    lenient = build_result_gate(fraud_candidate_model, endpoint="fraud-model", name="lenient_gate")
    missing = build_result_gate(
        fraud_candidate_model,
        endpoint="fraud-model",
        app="no-such-app",
        require_results=True,
        name="needs_results",
    )
    unknown = build_result_gate(fraud_candidate_model, endpoint="nobody", name="unknown_gate")
    with instance_for_test() as instance:
        result = materialize(
            [fraud_candidate_model, strict, lenient, missing, unknown],
            instance=instance,
            resources={"mm": MonitoringResource(home=home)},
            raise_on_error=False,
        )
    passed = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert passed == {
        "strict_gate": False,
        "lenient_gate": True,
        "needs_results": False,
        "unknown_gate": False,
    }


# -- the sensor --------------------------------------------------------------------------------


def tick(defs: Definitions, sensor_name: str, home: str, instance: DagsterInstance, cursor: str | None):  # type: ignore[no-untyped-def]
    with build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"mm": MonitoringResource(home=home)}
    ) as context:
        return defs.resolve_sensor_def(sensor_name).evaluate_tick(context)


def test_the_retrain_sensor_requests_once_per_episode(mm: Monitoring, endpoint) -> None:  # type: ignore[no-untyped-def]
    other = mm.create_endpoint(
        "other-model", reference=reference_frame(500, seed=2), label_names=["prediction"]
    )
    home = mm.settings.home
    sensor = build_persistence_sensor(
        name="retrain_on_drift", job_name="fraud_retrain_job", k=2, n=3, clock=fixed_clock(NOW)
    )
    from apps.gating import fraud_retrain_job

    defs = Definitions(assets=[fraud_retrained_model], jobs=[fraud_retrain_job], sensors=[sensor])
    first = Window.containing(NOW - timedelta(hours=3), 10)
    windows = [Window(first.start + STEP * i, first.end + STEP * i) for i in range(12)]
    pattern = [ResultStatusApp.detected if c == "D" else ResultStatusApp.no_detection for c in "NDNDDDNNNDDN"]
    # k=2 of n=3 persists at windows 3 to 6, and from 10 on
    requested: list[str] = []
    cursor = None
    with instance_for_test() as instance:
        for w, status in zip(windows, pattern, strict=True):
            store(mm, endpoint.id, w, status)
            store(mm, other.id, w, ResultStatusApp.no_detection)
            result = tick(defs, "retrain_on_drift", home, instance, cursor)
            cursor = result.cursor
            requested += [r.run_key for r in result.run_requests]
            for r in result.run_requests:
                assert r.tags["mm/endpoint"] == "fraud-model" and r.tags["mm/result"] == "general_drift"
        assert requested == [
            f"retrain_on_drift:{endpoint.id}:{windows[3].start.isoformat()}",
            f"retrain_on_drift:{endpoint.id}:{windows[10].start.isoformat()}",
        ]
        # Runs requested with those keys launch the toy retraining job.
        run = defs.resolve_job_def("fraud_retrain_job").execute_in_process(
            instance=instance,
            tags={"mm/endpoint": "fraud-model", "mm/episode_start": windows[9].start.isoformat()},
        )
        (materialization,) = run.asset_materializations_for_node("fraud_retrained_model")
        assert materialization.metadata["endpoint"].value == "fraud-model"


def test_the_sensor_watches_only_the_named_endpoints(mm: Monitoring, endpoint) -> None:  # type: ignore[no-untyped-def]
    other = mm.create_endpoint(
        "other-model", reference=reference_frame(500, seed=2), label_names=["prediction"]
    )
    sensor = build_persistence_sensor(
        name="watch_other",
        job_name="fraud_retrain_job",
        k=1,
        n=1,
        endpoints=["other-model", "ghost"],
        clock=fixed_clock(NOW),
    )
    from apps.gating import fraud_retrain_job

    defs = Definitions(assets=[fraud_retrained_model], jobs=[fraud_retrain_job], sensors=[sensor])
    store(mm, endpoint.id, past_window(30), ResultStatusApp.detected)
    with instance_for_test() as instance:
        assert not tick(defs, "watch_other", mm.settings.home, instance, None).run_requests
        store(mm, other.id, past_window(20), ResultStatusApp.detected)
        (request,) = tick(defs, "watch_other", mm.settings.home, instance, None).run_requests
        assert request.tags["mm/endpoint_id"] == other.id


def test_the_demo_code_location_has_the_gate_the_promotion_job_and_the_retrain_sensor() -> None:
    from apps.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {c.to_user_string() for c in graph.asset_check_keys} >= {
        "fraud_candidate_model:fraud_detector_not_drifting"
    }
    assert defs.resolve_job_def("fraud_promotion_job") is not None
    assert defs.resolve_sensor_def("fraud_retrain_on_drift").job_name == "fraud_retrain_job"
