"""When monitoring results should act (pure): k-of-n persistence and episodes.

A result *persists* at a window when it was detected in at least `k` of the last `n` analysed
windows up to it. An *episode* is a maximal stretch of windows at which it persists; it begins at
the first of them and ends when the result no longer persists. A sensor acts once per episode:
`decide` tells it, from the episode it remembers and the result's recent history, whether a new
episode has begun.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from mm_dagster.core.errors import MonitoringError


@dataclass(frozen=True)
class PersistenceRule:
    """Detected in at least `k` of the last `n` analysed windows (1 <= k <= n)."""

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


def _trailing_run(persists: Sequence[bool]) -> int | None:
    """Index of the first position of the trailing run of True, None if the last is False."""
    if not persists or not persists[-1]:
        return None
    first = len(persists) - 1
    while first > 0 and persists[first - 1]:
        first -= 1
    return first


def episode_start(history: Sequence[tuple[datetime, bool]], rule: PersistenceRule) -> datetime | None:
    """The window at which the current episode began, or None when the result does not persist
    at the newest window. `history`: (window start, detected) of the analysed windows, oldest
    first."""
    first = _trailing_run(rule.persists([detected for _, detected in history]))
    return None if first is None else history[first][0]


@dataclass(frozen=True)
class EpisodeDecision:
    active_since: datetime | None  # the episode to remember (None: none is going on)
    act: bool  # a new episode began: act (request the job) once


def decide(
    active_since: datetime | None, history: Sequence[tuple[datetime, bool]], rule: PersistenceRule
) -> EpisodeDecision:
    """Given the episode remembered from the last decision (None if none) and the history up to
    now (oldest first), whether to act. An episode still going on is not acted on again, even
    when its beginning has left the history; the remembered one ended when the history shows a
    window after its start where the result did not persist, judged on a full `n` windows."""
    persists = rule.persists([detected for _, detected in history])
    first = _trailing_run(persists)
    if first is None:
        return EpisodeDecision(None, False)
    start = history[first][0]
    if active_since is None:
        return EpisodeDecision(start, True)
    # The window just before this stretch did not persist: if it came after the remembered
    # start (and had n windows of history behind it), the remembered episode had ended.
    before = first - 1
    if before >= rule.n - 1 and history[before][0] > active_since:
        return EpisodeDecision(start, True)
    return EpisodeDecision(active_since, False)
