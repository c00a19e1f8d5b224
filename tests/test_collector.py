"""`core.collector`: the garbage collector paused for a built-in app's pass over a window."""

import gc

import pytest

from mm_dagster.core.collector import (
    MIDDLE_COLLECTION_EVERY,
    YOUNG_COLLECTION_THRESHOLD,
    collector_paused,
    fewer_collections,
)


def test_fewer_collections_during_a_window_and_the_collector_restored_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_EVERY, before[2])
        assert gc.get_freeze_count() > 0  # what was alive is out of the collector's reach
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(ZeroDivisionError), fewer_collections():
        _ = 1 / 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with fewer_collections():  # nested (a shard's read, then its run): the outer one restores
        frozen = gc.get_freeze_count()
        with fewer_collections():
            pass
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_EVERY, before[2])
        assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


class Node:
    def __init__(self) -> None:
        self.other: object = None


def in_oldest_generation(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation=2))


def test_no_pass_inside_and_what_is_left_alive_goes_to_the_oldest_generation() -> None:
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with collector_paused():
        assert not gc.isenabled()
        kept = [Node() for _ in range(10)]
        cycle = Node()
        cycle.other = Node()
        cycle.other.other = cycle  # type: ignore[attr-defined]
        del cycle
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert all(in_oldest_generation(node) for node in kept)  # no young pass walks them
    assert gc.collect() >= 2  # the cycle made inside dies at the next full pass


def test_objects_frozen_before_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            kept = Node()
        assert gc.isenabled() and gc.get_freeze_count() == frozen
        gc.disable()  # no pass while looking: it could move `kept` on
        assert not in_oldest_generation(kept)  # left young: walked by the next young pass instead
    finally:
        gc.enable()
        gc.unfreeze()


def test_inside_a_window_analysis_and_nested() -> None:
    thresholds = gc.get_threshold()
    with fewer_collections():
        with collector_paused():
            kept = Node()
            with collector_paused():  # nested: the outer one turns the collector on again
                pass
            assert not gc.isenabled()
        assert gc.isenabled() and in_oldest_generation(kept)
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0


def test_on_again_after_an_error_and_left_off_when_it_was_off() -> None:
    with pytest.raises(ZeroDivisionError), collector_paused():
        _ = 1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_drift_apps_batch_pass_runs_with_the_collector_paused() -> None:
    from mm_dagster.applications import HistogramDataDriftApplication

    app = HistogramDataDriftApplication()
    seen: list[bool] = []
    app._track_all = lambda contexts: seen.append(gc.isenabled()) or []  # type: ignore[method-assign]
    assert app.track_window([]) == []
    assert seen == [False] and gc.isenabled()
