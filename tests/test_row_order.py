"""`storage.row_order`: the order `np.lexsort((micros, owner))` gives, found cheaply for sorted runs."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.storage.row_order import row_order


def _lexsorted(owner: np.ndarray, micros: np.ndarray) -> np.ndarray:
    return np.lexsort((micros, owner))


def _applied(order: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if order is None else order


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), max_size=60),
)
def test_any_rows_get_the_lexsort_order(rows: list[tuple[int, int]]) -> None:
    owner = np.array([o for o, _ in rows], dtype=np.int64)
    micros = np.array([m for _, m in rows], dtype=np.int64)
    order = row_order(owner, micros)
    np.testing.assert_array_equal(_applied(order, len(rows)), _lexsorted(owner, micros))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.integers(1, 30), st.integers(0, 2**32))
def test_drains_in_time_order_are_merged_by_endpoint(drains: int, endpoints: int, seed: int) -> None:
    """Files each sorted by (endpoint, time), later files holding later events (ties at the
    seams included): the order of the full sort."""
    rng = np.random.default_rng(seed)
    owners, times = [], []
    for d in range(drains):
        counts = rng.integers(0, 5, endpoints)
        owner = np.repeat(np.arange(endpoints), counts)
        micros = np.concatenate([np.sort(rng.integers(d * 10, d * 10 + 11, c)) for c in counts])
        owners.append(owner)
        times.append(micros)
    owner, micros = np.concatenate(owners), np.concatenate(times)
    order = row_order(owner, micros)
    np.testing.assert_array_equal(_applied(order, len(owner)), _lexsorted(owner, micros))


def test_rows_in_order_need_no_permutation() -> None:
    owner = np.array([0, 0, 1, 1, 1, 3])
    micros = np.array([5, 5, 1, 2, 9, 0])
    assert row_order(owner, micros) is None
    assert row_order(np.empty(0, np.int64), np.empty(0, np.int64)) is None


def test_an_endpoint_whose_later_file_holds_earlier_events_is_fully_sorted() -> None:
    """Two files, the second with an event earlier than the first's (a late drain): the stable
    sort by endpoint alone would be wrong; the full sort is used."""
    owner = np.array([0, 1, 0, 1])
    micros = np.array([10, 10, 5, 20])
    np.testing.assert_array_equal(row_order(owner, micros), [2, 0, 1, 3])


def test_ties_keep_their_scanned_order() -> None:
    owner = np.array([1, 0, 1, 0])
    micros = np.array([3, 3, 3, 3])
    np.testing.assert_array_equal(row_order(owner, micros), [1, 3, 0, 2])
