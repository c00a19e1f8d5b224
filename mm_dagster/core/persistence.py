"""Persistence: a status counts only when it held in k of the last n windows (pure rule).

An app with `persistence = Persistence(k, n)` keeps each result's own verdict as its raw status
(`extra_data["raw_status"]`) and reports the highest level that at least k of the last n raw
statuses (this window's and the n - 1 before it) reached; a window without a result counts as
no detection. `irrelevant` (too little data) is reported as it is. The gating sensors
(core.gating) use the same rule on a result's history of detections (`persists`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultStatusApp

RAW_STATUS = "raw_status"


@dataclass(frozen=True)
class Persistence:
    k: int
    n: int

    def __post_init__(self) -> None:
        values: tuple[object, ...] = (self.k, self.n)
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        if not whole or not 1 <= self.k <= self.n:
            raise MonitoringError(
                f"persistence needs whole numbers 1 <= k <= n, got k={self.k!r}, n={self.n!r}"
            )

    def persists(self, detected: Sequence[bool]) -> list[bool]:
        """For each position of `detected` (oldest first): whether k of the last n (fewer at the
        start) up to it are detected."""
        flags = np.asarray(detected, dtype=np.int64)
        totals = np.cumsum(flags)
        before = np.concatenate([np.zeros(self.n, dtype=np.int64), totals])[: len(flags)]
        return [bool(v) for v in (totals - before) >= self.k]

    def status(self, raw: ResultStatusApp, previous: Sequence[ResultStatusApp]) -> ResultStatusApp:
        """`previous`: raw statuses of up to n - 1 earlier windows (missing ones count as none)."""
        if raw == ResultStatusApp.irrelevant:
            return raw
        window = [raw, *previous[-(self.n - 1) :]] if self.n > 1 else [raw]
        for level in (ResultStatusApp.detected, ResultStatusApp.potential_detection):
            if raw >= level and sum(s >= level for s in window) >= self.k:
                return level
        return ResultStatusApp.no_detection
