"""Distances between normalised histograms t (window) and u (reference), spec §3.

All functions are vectorised over leading axes: inputs of shape (..., bins) give (...).
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray

KLD_ZERO_REPLACEMENT = 1e-4


def normalise(counts: ArrayLike) -> NDArray[np.float64]:
    """Counts -> probabilities along the last axis; an all-zero row stays all zero."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    probabilities: NDArray[np.float64] = np.divide(
        counts, totals, out=np.zeros_like(counts), where=totals > 0
    )
    return probabilities


def total_variation(t: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """TVD = 1/2 * sum_i |t_i - u_i|."""
    distance: NDArray[np.float64] = 0.5 * np.abs(np.asarray(t) - np.asarray(u)).sum(axis=-1)
    return distance


def hellinger(t: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Hellinger = sqrt(max(1 - sum_i sqrt(t_i * u_i), 0))."""
    bc = np.sqrt(np.asarray(t) * np.asarray(u)).sum(axis=-1)
    distance: NDArray[np.float64] = np.sqrt(np.maximum(1.0 - bc, 0.0))
    return distance


def _kl(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """KL(a||b), natural log; terms with a_i = 0 dropped; b_i = 0 replaced by 1e-4."""
    b_safe = np.where(b == 0, KLD_ZERO_REPLACEMENT, b)
    log_a = np.log(a, out=np.zeros_like(a), where=a > 0)
    divergence: NDArray[np.float64] = (a * (log_a - np.log(b_safe))).sum(axis=-1)
    return divergence


def symmetric_kl(t: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """KLD = KL(t||u) + KL(u||t), uncapped."""
    t = np.asarray(t, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    divergence: NDArray[np.float64] = _kl(t, u) + _kl(u, t)
    return divergence


def all_distances(t: NDArray[np.float64], u: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    return {"tvd": total_variation(t, u), "hellinger": hellinger(t, u), "kld": symmetric_kl(t, u)}
