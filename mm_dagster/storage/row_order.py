"""The order of a window's scanned rows by endpoint, then time.

A window is read from a few files, each sorted by endpoint then time (a slot file), and the files
of later drains hold later events: the scan is a few sorted runs. Sorting by endpoint alone with a
stable sort merges those runs in about linear time (numpy's stable sort is a timsort), and one
compiled pass checks that each endpoint's times then rise; only rows that are not such runs are
sorted by (endpoint, time) in full. Either way the order is the one `np.lexsort((micros, owner))`
gives (ties keep their scanned order).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _rises(order: np.ndarray, owner: np.ndarray, micros: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Whether the rows taken in `order` (all of them, in scanned order, when `order` is empty)
    are in (owner, micros) order."""
    n = owner.shape[0]
    whole = order.shape[0] == 0
    previous = 0 if whole else order[0]
    for k in range(1, n):
        row = k if whole else order[k]
        if owner[row] < owner[previous]:
            return False
        if owner[row] == owner[previous] and micros[row] < micros[previous]:
            return False
        previous = row
    return True


def row_order(owner: np.ndarray, micros: np.ndarray) -> np.ndarray | None:
    """The stable permutation that puts rows in (owner, micros) order, None when they are in
    that order as scanned. `owner`: each row's endpoint index, `micros`: its time (int64)."""
    owner, micros = np.ascontiguousarray(owner, np.int64), np.ascontiguousarray(micros, np.int64)
    if len(owner) < 2 or _rises(np.empty(0, dtype=np.int64), owner, micros):
        return None
    order = np.argsort(owner, kind="stable")
    if _rises(order, owner, micros):
        return order
    return np.lexsort((micros, owner))
