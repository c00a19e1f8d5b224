"""Persistence: report a status only when it held in k of the last n windows (pure rule).

An app with `persistence = Persistence(k, n)` keeps each result's own verdict as its raw status
(`extra_data["raw_status"]`) and reports the highest level that at least k of the last n raw
statuses (this window's and the n - 1 before it) reached; a window without a result counts as
no detection. `irrelevant` (too little data) is reported as it is.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultStatusApp

RAW_STATUS = "raw_status"


@dataclass(frozen=True)
class Persistence:
    k: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise MonitoringError(f"persistence needs 1 <= k <= n, got k={self.k!r}, n={self.n!r}")

    def status(self, raw: ResultStatusApp, previous: Sequence[ResultStatusApp]) -> ResultStatusApp:
        """`previous`: raw statuses of up to n - 1 earlier windows (missing ones count as none)."""
        if raw == ResultStatusApp.irrelevant:
            return raw
        window = [raw, *previous[-(self.n - 1) :]] if self.n > 1 else [raw]
        for level in (ResultStatusApp.detected, ResultStatusApp.potential_detection):
            if raw >= level and sum(s >= level for s in window) >= self.k:
                return level
        return ResultStatusApp.no_detection
