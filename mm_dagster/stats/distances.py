"""Distances between normalised histograms t (window) and u (reference), spec §3.

All functions are vectorised over leading axes: inputs of shape (..., bins) give (...).
"""

import numpy as np

KLD_ZERO_REPLACEMENT = 1e-4


def normalise(counts: np.ndarray) -> np.ndarray:
    """Counts -> probabilities along the last axis; an all-zero row stays all zero."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def total_variation(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """TVD = 1/2 * sum_i |t_i - u_i|."""
    return 0.5 * np.abs(np.asarray(t) - np.asarray(u)).sum(axis=-1)


def hellinger(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Hellinger = sqrt(max(1 - sum_i sqrt(t_i * u_i), 0))."""
    bc = np.sqrt(np.asarray(t) * np.asarray(u)).sum(axis=-1)
    return np.sqrt(np.maximum(1.0 - bc, 0.0))


def _kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KL(a||b), natural log; terms with a_i = 0 dropped; b_i = 0 replaced by 1e-4."""
    b_safe = np.where(b == 0, KLD_ZERO_REPLACEMENT, b)
    log_a = np.log(a, out=np.zeros_like(a), where=a > 0)
    return (a * (log_a - np.log(b_safe))).sum(axis=-1)


def symmetric_kl(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """KLD = KL(t||u) + KL(u||t), uncapped."""
    t = np.asarray(t, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    return _kl(t, u) + _kl(u, t)


def all_distances(t: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
    return {"tvd": total_variation(t, u), "hellinger": hellinger(t, u), "kld": symmetric_kl(t, u)}
