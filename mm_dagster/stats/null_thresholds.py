"""Per-feature drift thresholds from the TVD's null distribution at the window's size.

A window of n rows drawn from the reference distribution still shows a TVD > 0 (about 0.25 for
20 bins at 100 rows, 0.02 at 10k), so no fixed threshold fits every window size. Here the
threshold is the (1 - alpha) quantile of the TVD between two multinomial samples of the reference
histogram: one of the window's size n, one of the reference's size m. The asymptotic chi-square
test over-alarms on sparse and padded bins; simulation does not.

The null of the TVD does not change when bins are permuted, so simulations are cached under the
sorted, rounded bin probabilities together with geometric size buckets for n and m. Sizes are
rounded down to their bucket, which only raises the threshold (fewer false alarms).
"""

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

import numpy as np

from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.distances import normalise, total_variation

BUCKETS_PER_DOUBLING = 8
PROBABILITY_GRID = 0.005
DEFAULT_DRAWS = 4000
CACHE_SIZE = 4096


def size_bucket(n: int) -> int:
    """Largest 2**(k/8) (rounded) that is <= n, for n >= 1."""
    if n < 1:
        return 0
    k = int(np.floor(np.log2(n) * BUCKETS_PER_DOUBLING + 1e-9))
    return max(1, int(np.floor(2 ** (k / BUCKETS_PER_DOUBLING))))


def probability_signature(probabilities: np.ndarray) -> tuple[int, ...]:
    """Permutation-invariant, rounded key of a probability vector.

    Empty bins are dropped (they add nothing to the TVD); a non-empty bin keeps at least one grid
    step, so rare bins still add their noise to the null.
    """
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    p = p[p > 0]
    grid = np.maximum(np.round(p / PROBABILITY_GRID), 1).astype(np.int64)
    return tuple(int(g) for g in grid) or (1,)


def simulate_null_tvd(
    probabilities: np.ndarray, n: int, m: int | None, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """TVDs between a size-n sample and a size-m sample (or p itself when m is None) of p."""
    p = normalise(np.asarray(probabilities, dtype=np.float64))
    window = normalise(rng.multinomial(n, p, size=draws))
    reference = p if m is None else normalise(rng.multinomial(m, p, size=draws))
    return total_variation(window, reference)


def upper_bound_quantile(probabilities: np.ndarray, n: int, m: int | None, alpha: float) -> float:
    """A guaranteed upper bound on the (1 - alpha) quantile of the null TVD.

    E[TVD] <= 1/2 sum_i sqrt(p_i (1 - p_i)) (1/sqrt(n) + 1/sqrt(m)) (Jensen, per bin), and the TVD
    changes by at most 1/n (1/m) when one window (reference) row changes, so McDiarmid's
    inequality gives P(TVD >= E + t) <= exp(-2 t^2 / (1/n + 1/m)). When this bound is below the
    effect-size floor the floor decides alone, and no simulation is needed (large windows).
    """
    p = normalise(np.asarray(probabilities, dtype=np.float64))
    spread = 0.5 * np.sqrt(p * (1 - p)).sum()
    inv = 1 / n + (1 / m if m else 0.0)
    mean_bound = spread * (1 / np.sqrt(n) + (1 / np.sqrt(m) if m else 0.0))
    return float(mean_bound + np.sqrt(np.log(1 / alpha) * inv / 2))


@dataclass(frozen=True)
class NullQuantiles:
    potential: float
    detected: float


class NullThresholdCache:
    """Thread-safe LRU of simulated null quantiles, keyed by (signature, n bucket, m bucket)."""

    def __init__(
        self,
        alpha_potential: float = 0.008,
        alpha_detected: float = 0.001,
        draws: int = DEFAULT_DRAWS,
        seed: int = 20261123,
    ) -> None:
        if not 0 < alpha_detected < alpha_potential < 1:
            raise MonitoringError(
                f"need 0 < alpha_detected ({alpha_detected}) < alpha_potential ({alpha_potential}) < 1"
            )
        self.alpha_potential = alpha_potential
        self.alpha_detected = alpha_detected
        self.draws = draws
        self.seed = seed
        self._cache: OrderedDict[tuple[tuple[int, ...], int, int | None], NullQuantiles] = OrderedDict()
        self._lock = Lock()
        self.simulations = 0

    def quantiles(self, probabilities: np.ndarray, n: int, m: int | None) -> NullQuantiles:
        signature = probability_signature(probabilities)
        n_b = size_bucket(n)
        # A reference far larger than the window adds no noise worth simulating.
        m_b = None if m is None or m >= 50 * n else size_bucket(m)
        key = (signature, n_b, m_b)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        grid_p = np.asarray(signature, dtype=np.float64)
        rng = np.random.default_rng([self.seed, n_b, m_b or 0, len(signature)])
        tvd = simulate_null_tvd(grid_p, n_b, m_b, self.draws, rng)
        q_pot, q_det = np.quantile(tvd, [1 - self.alpha_potential, 1 - self.alpha_detected])
        result = NullQuantiles(float(q_pot), float(q_det))
        with self._lock:
            self.simulations += 1
            self._cache[key] = result
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result
