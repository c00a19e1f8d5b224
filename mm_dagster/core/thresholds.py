"""Two increasing bounds that turn a value into a result status (spec §3's classifier)."""

import math
from dataclasses import dataclass

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultStatusApp


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Thresholds:
    """`detected` at or above `detected`, `potential_detection` at or above `potential`.

    Both lie in (0, 1] with `potential < detected`; with `below_one`, `detected < 1` too (for
    distances that reach 1 only on disjoint distributions). `what` names the bounded value in
    errors, e.g. "error rate".
    """

    potential: float
    detected: float
    what: str = "value"
    below_one: bool = False

    def __post_init__(self) -> None:
        ordered = _finite(self.potential) and _finite(self.detected) and 0 < self.potential < self.detected
        if not ordered or not self._within_upper_limit():
            raise MonitoringError(
                f"{self.what} thresholds must satisfy 0 < potential ({self.potential!r}) "
                f"< detected ({self.detected!r}) {self._upper_limit()}"
            )

    def _within_upper_limit(self) -> bool:
        return self.detected < 1 if self.below_one else self.detected <= 1

    def _upper_limit(self) -> str:
        return "< 1" if self.below_one else "<= 1"

    def status(self, value: float) -> ResultStatusApp:
        if value >= self.detected:
            return ResultStatusApp.detected
        if value >= self.potential:
            return ResultStatusApp.potential_detection
        return ResultStatusApp.no_detection


@dataclass(frozen=True)
class Bounds(Thresholds):
    """Like `Thresholds`, for values with no upper limit (latencies, counts): `detected` at or
    above `detected`, `potential_detection` at or above `potential`, 0 < potential < detected."""

    def _within_upper_limit(self) -> bool:
        return True

    def _upper_limit(self) -> str:
        return "(both finite)"


def check_window_alphas(potential: float, detected: float) -> None:
    """The per-window false-alarm levels of an app: 0 < detected < potential < 1."""
    if not 0 < detected < potential < 1:
        raise MonitoringError(
            f"need 0 < window_alpha_detected ({detected}) < window_alpha_potential ({potential}) < 1"
        )
