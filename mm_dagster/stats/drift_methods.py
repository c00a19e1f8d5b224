"""How much a feature drifted: the effect-size measures a feature's verdict can use, and the
per-feature policy (exclude, method, threshold, importance weight).

Whatever the method, a feature is flagged only when the drift test (stats.drift_test) finds the
change significant within the window's false-alarm budget *and* the method's distance exceeds the
feature's threshold; the method decides what "large enough to matter" means.

Built in (each `distance` gets the merged test bins, and for `wasserstein` the quantiles):
- `tvd`: total variation, ½ Σ|t - u| (default, threshold 0.1);
- `hellinger`: √(1 - Σ√(t u)) (threshold 0.1);
- `psi`: population stability index Σ (t - u) ln(t / u), shares floored at 1e-4 (threshold 0.1, the
  usual "moderate shift" line);
- `jensen_shannon`: Jensen-Shannon distance, base 2, in [0, 1] (threshold 0.1);
- `wasserstein`: numeric only, the Wasserstein-1 distance between the window's and the
  reference's quantile functions at the 40 mid-levels of the stored 41 quantiles, divided by the
  reference standard deviation (threshold 0.1, as Evidently's normed Wasserstein);
- `chi_square`: Cramér's V = √(χ² / N) of the window-vs-reference table (threshold 0.1, a small
  effect).
A user method is any object with `name`, `kinds`, `default_threshold` and `distance(DriftInput)`:
pass it to the app (`HistogramDataDriftApplication(extra_methods=[...])`).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import numpy as np
from scipy.spatial import distance as scipy_distance

from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.distances import hellinger, normalise, total_variation
from mm_dagster.stats.drift_test import pearson_chi_square

NUMERIC, CATEGORICAL = "numeric", "categorical"
BOTH = frozenset({NUMERIC, CATEGORICAL})
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftInput:
    """One feature of one window: counts on the merged test bins (window, reference) and, for
    numeric features, the quantiles at the stored levels (window's only when a method needs it)."""

    kind: str
    window: np.ndarray
    reference: np.ndarray
    window_quantiles: np.ndarray | None = None
    reference_quantiles: np.ndarray | None = None
    reference_std: float | None = None


class DriftMethod(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kinds(self) -> frozenset[str]: ...
    @property
    def default_threshold(self) -> float: ...

    def distance(self, data: DriftInput) -> float: ...


Measure = Callable[[np.ndarray, np.ndarray], float]
RowMeasure = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BinnedMethod:
    """A distance between the normalised window and reference test-bin shares. `row_measure`,
    when given, is the measure of each row of two (features x bins) share arrays at once, where
    a bin of zero shares on both sides adds nothing (rows may be zero-padded)."""

    name: str
    measure: Measure
    default_threshold: float = 0.1
    kinds: frozenset[str] = BOTH
    needs_quantiles: bool = False
    row_measure: RowMeasure | None = None

    def distance(self, data: DriftInput) -> float:
        return float(self.measure(normalise(data.window), normalise(data.reference)))


def _psi_rows(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    t, u = np.maximum(t, PSI_FLOOR), np.maximum(u, PSI_FLOOR)
    psi: np.ndarray = ((t - u) * np.log(t / u)).sum(axis=-1)
    return psi


def _jensen_shannon_rows(t: np.ndarray, u: np.ndarray) -> np.ndarray:
    distance: np.ndarray = scipy_distance.jensenshannon(t, u, base=2, axis=-1)
    return distance


def _scalar(rows: RowMeasure) -> Measure:
    return lambda t, u: float(rows(t, u))


@dataclass(frozen=True)
class WassersteinMethod:
    name: str = "wasserstein"
    default_threshold: float = 0.1
    kinds: frozenset[str] = frozenset({NUMERIC})
    needs_quantiles: bool = True

    def distance(self, data: DriftInput) -> float:
        if data.window_quantiles is None or data.reference_quantiles is None:
            raise MonitoringError(
                "wasserstein needs the reference's stored quantiles (recreate the reference)"
            )
        # Mid-levels: the average of neighbouring quantiles approximates the quantile function
        # in each 1/40 slice of probability.
        window_mid = (data.window_quantiles[1:] + data.window_quantiles[:-1]) / 2
        reference_mid = (data.reference_quantiles[1:] + data.reference_quantiles[:-1]) / 2
        w1 = float(np.abs(window_mid - reference_mid).mean())
        scale = data.reference_std or 0.0
        return w1 / scale if scale > 0 else (0.0 if w1 == 0 else float("inf"))


@dataclass(frozen=True)
class CramersVMethod:
    name: str = "chi_square"
    default_threshold: float = 0.1
    kinds: frozenset[str] = BOTH
    needs_quantiles: bool = False

    def distance(self, data: DriftInput) -> float:
        total = float(data.window.sum() + data.reference.sum())
        return float(np.sqrt(pearson_chi_square(data.window, data.reference) / total)) if total else 0.0


BUILT_IN_METHODS: Mapping[str, DriftMethod] = MappingProxyType(
    {
        m.name: m
        for m in (
            BinnedMethod("tvd", _scalar(total_variation), row_measure=total_variation),
            BinnedMethod("hellinger", _scalar(hellinger), row_measure=hellinger),
            BinnedMethod("psi", _scalar(_psi_rows), row_measure=_psi_rows),
            BinnedMethod("jensen_shannon", _scalar(_jensen_shannon_rows), row_measure=_jensen_shannon_rows),
            WassersteinMethod(),
            CramersVMethod(),
        )
    }
)
DEFAULT_METHOD = "tvd"


def method_registry(extra: Iterable[DriftMethod] = ()) -> Mapping[str, DriftMethod]:
    """The built-in methods plus `extra` (a user method may not reuse a built-in name)."""
    methods = dict(BUILT_IN_METHODS)
    for method in extra:
        for attribute in ("name", "kinds", "default_threshold", "distance"):
            if not hasattr(method, attribute):
                raise MonitoringError(f"drift method {method!r} has no {attribute!r}")
        if method.name in methods:
            raise MonitoringError(f"drift method {method.name!r} is already registered")
        methods[method.name] = method
    return MappingProxyType(methods)


@dataclass(frozen=True)
class FeaturePolicy:
    """How one feature is judged: `exclude` leaves it out of every per-feature verdict and score
    (MLRun-compatible means keep it); `method` names a registered method (None: the app's
    default); `threshold` overrides the method's default effect threshold; `weight` is its
    importance in the endpoint's drift score."""

    exclude: bool = False
    method: str | None = None
    threshold: float | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.threshold is not None and not self.threshold >= 0:
            raise MonitoringError(f"a feature threshold must be >= 0, got {self.threshold}")
        if not (np.isfinite(self.weight) and self.weight >= 0):
            raise MonitoringError(f"a feature weight must be a finite number >= 0, got {self.weight}")


def resolve_policies(
    policies: Mapping[str, FeaturePolicy], methods: Mapping[str, DriftMethod], default_method: str
) -> None:
    """Raise, naming the feature, when a policy asks for an unknown method."""
    if default_method not in methods:
        raise MonitoringError(f"default drift method {default_method!r} is not one of {sorted(methods)}")
    for feature, policy in policies.items():
        if not isinstance(policy, FeaturePolicy):
            raise MonitoringError(f"feature {feature!r}: expected a FeaturePolicy, got {policy!r}")
        if policy.method is not None and policy.method not in methods:
            raise MonitoringError(
                f"feature {feature!r}: drift method {policy.method!r} is not one of {sorted(methods)}"
            )
