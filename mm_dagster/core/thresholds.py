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
        upper_ok = self.detected < 1 if self.below_one else self.detected <= 1
        if not (_finite(self.potential) and _finite(self.detected) and 0 < self.potential < self.detected):
            upper_ok = False
        if not upper_ok:
            bound = "< 1" if self.below_one else "<= 1"
            raise MonitoringError(
                f"{self.what} thresholds must satisfy 0 < potential ({self.potential!r}) "
                f"< detected ({self.detected!r}) {bound}"
            )

    def status(self, value: float) -> ResultStatusApp:
        if value >= self.detected:
            return ResultStatusApp.detected
        if value >= self.potential:
            return ResultStatusApp.potential_detection
        return ResultStatusApp.no_detection


@dataclass(frozen=True)
class Bounds:
    """Like `Thresholds`, for values with no upper limit (latencies, counts): `detected` at or
    above `detected`, `potential_detection` at or above `potential`, 0 < potential < detected."""

    potential: float
    detected: float
    what: str = "value"

    def __post_init__(self) -> None:
        if not (_finite(self.potential) and _finite(self.detected) and 0 < self.potential < self.detected):
            raise MonitoringError(
                f"{self.what} bounds must satisfy 0 < potential ({self.potential!r}) "
                f"< detected ({self.detected!r}), both finite"
            )

    def status(self, value: float) -> ResultStatusApp:
        if value >= self.detected:
            return ResultStatusApp.detected
        if value >= self.potential:
            return ResultStatusApp.potential_detection
        return ResultStatusApp.no_detection
