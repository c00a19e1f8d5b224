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

from mm_dagster.core.persistence import Persistence


def _trailing_run(persists: Sequence[bool]) -> int | None:
    """Index of the first position of the trailing run of True, None if the last is False."""
    if not persists or not persists[-1]:
        return None
    first = len(persists) - 1
    while first > 0 and persists[first - 1]:
        first -= 1
    return first


def episode_start(history: Sequence[tuple[datetime, bool]], rule: Persistence) -> datetime | None:
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
    active_since: datetime | None, history: Sequence[tuple[datetime, bool]], rule: Persistence
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
