"""The cyclic garbage collector while a window is analysed: `fewer_collections` for the
whole of it, `collector_paused` for a built-in app's pass over all its endpoints.

A built-in app's pass over a window's endpoints (`HistogramDataDriftApplication.track_window`)
leaves ~70 container objects an endpoint alive (results, their `extra_data`, decoded drift
plans) and makes almost no cyclic garbage (measured, 10,000 endpoints: ~9,000 unreachable
objects more at the end of a window with the collector off throughout than with it on). With
the collector on, its passes walk those objects while they are young and once more when the
window ends (~0.5-0.8 s of a 10-11 s run at 10,000 endpoints).
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_COLLECTION_THRESHOLD = 50_000  # allocations between young-generation passes (CPython: 700)
MIDDLE_COLLECTION_EVERY = 1_000  # young passes between middle-generation passes (CPython: 10)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Fewer passes of the cyclic garbage collector while a window is analysed: what was alive
    when it started (the window's events, the endpoints, the imported code) is moved out of the
    collector's reach (`gc.freeze`), young-generation passes come every 50,000 allocations
    instead of 700, and the middle generation is passed over every 1,000 of them instead of 10
    (short-lived cycles still die young). The analysis allocates millions of small objects that
    live until it ends, so the default passes mostly walk live objects (measured: 10-15% of the
    drift app's CPU time at 1,000 endpoints; at 3,000 the middle passes took ~0.4 s by the
    collector's own clock, yet whole runs with and without them were within noise, 0.99x, and
    peak memory the same). The settings are restored when it ends. Inside another, it changes
    nothing (the outer one restores them when the whole of its work ends)."""
    if _fewer_collections_on():
        yield
        return
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_EVERY, thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collector pass inside; at the end, what the work left alive goes to the oldest
    generation without a pass (cyclic garbage made inside is collected by the next full pass),
    and the collector is on again. Inside another (or with the collector off), nothing changes.
    Objects frozen (`gc.freeze`) before it stay frozen (then what it left alive is walked by
    the next young pass), unless it runs inside `fewer_collections`, which unfreezes them when
    it ends anyway."""
    if not gc.isenabled():
        yield
        return
    frozen_before = gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        if frozen_before == 0 or _fewer_collections_on():
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _fewer_collections_on() -> bool:
    """Whether this runs inside `fewer_collections` (its young threshold is set)."""
    return gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
