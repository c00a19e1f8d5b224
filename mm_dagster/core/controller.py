"""The controller's decisions (pure): which closed windows to request, given what is stored.

Each tick sees, for every window in the look-back (the last `horizon` before the newest closed
window), how many stored events touch it (from the arrival log, as committed when the tick reads
it). The cursor remembers, per window, the count its last request saw and how many times it was
requested. So:
- A window is closed when `end + allowed_lateness <= now`; only closed windows are requested.
- A window whose stored count grew since it was last requested is requested (again): first with
  run_key `mm-<window key>`, then `mm-<window key>-rev<n>` for its n-th re-analysis. Late data is
  analysed, whatever order the writers' transactions commit in.
- At most `max_requests` windows per tick, newest first; the rest stay due and are requested by
  the next ticks, never dropped.
- With `silence_windows=N`, a closed window without stored events that follows N windows with
  events is requested too (once, like any window), so apps see endpoints that went silent.
- After a base_period change every window in the look-back is analysed again under the new
  length (spread over ticks by the cap); a window whose key was requested under the old length
  gets the next revision, so run keys stay unique. A cursor written by an earlier version (arrival
  ids, no counts) takes the windows before it as analysed at their current counts.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.traffic import went_silent
from mm_dagster.core.windows import Window, closed_before, to_utc, windows_between


@dataclass(frozen=True)
class Seen:
    """What the last request of a window saw: its stored-event count, and its revision."""

    events: int
    revision: int


@dataclass(frozen=True)
class ControllerCursor:
    closed_end: datetime | None = None
    base_period: int | None = None
    seen: Mapping[str, Seen] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> str:
        return json.dumps(
            {
                "closed_end": self.closed_end.isoformat() if self.closed_end else None,
                "base_period": self.base_period,
                "seen": {key: [s.events, s.revision] for key, s in sorted(self.seen.items())},
            }
        )

    @classmethod
    def from_json(cls, raw: str | None) -> "ControllerCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        # Cursors of earlier versions held {"last_end", "arrival_id"}: no base_period, no seen.
        closed_end = data.get("closed_end") or data.get("last_end")
        seen = {key: Seen(int(v[0]), int(v[1])) for key, v in (data.get("seen") or {}).items()}
        return cls(
            to_utc(closed_end) if closed_end else None,
            data.get("base_period"),
            MappingProxyType(seen),
        )


@dataclass(frozen=True)
class WindowRequest:
    window: Window
    revision: int = 0

    @property
    def run_key(self) -> str:
        key = f"mm-{self.window.key}"
        return f"{key}-rev{self.revision}" if self.revision else key


@dataclass
class ControllerPlan:
    requests: list[WindowRequest]
    cursor: ControllerCursor
    due: list[Window] = field(default_factory=list)  # due but past this tick's cap: next ticks
    horizon: datetime | None = None
    closed_end: datetime | None = None


def window_counts(spans: Iterable[ArrivalSpan], base_period: int) -> dict[Window, int]:
    """Stored events touching each window (a span's events count in every window it touches: the
    count only has to grow whenever events arrive for the window)."""
    step = timedelta(minutes=base_period)
    counts: dict[Window, int] = {}
    for span in spans:
        w = Window.containing(span.first_event, base_period)
        while w.start <= span.last_event:
            counts[w] = counts.get(w, 0) + span.events
            w = Window(w.end, w.end + step)
    return counts


def look_back(now: datetime, base_period: int, allowed_lateness: timedelta, horizon: timedelta) -> Window:
    """[from, to): the window starts a tick considers (`to` is the newest closed window's end)."""
    closed_end = closed_before(now, allowed_lateness, base_period)
    start = Window.containing(closed_end - horizon, base_period).start
    return Window(min(start, closed_end), closed_end)


def _adopted(cursor: ControllerCursor, counts: Mapping[Window, int], base_period: int) -> dict[str, Seen]:
    """The seen entries this tick starts from."""
    if cursor.closed_end is None or cursor.base_period == base_period:
        return dict(cursor.seen)
    if cursor.base_period is None:  # an earlier version's cursor: it requested what lay before it
        return {w.key: Seen(n, 0) for w, n in counts.items() if w.end <= cursor.closed_end}
    # A new base_period: nothing was analysed with this window length; keep revisions of keys.
    return {key: Seen(0, s.revision) for key, s in cursor.seen.items()}


def plan_requests(
    cursor: ControllerCursor,
    *,
    now: datetime,
    base_period: int,
    allowed_lateness: timedelta,
    horizon: timedelta,
    max_requests: int,
    counts: Mapping[Window, int],
    silence_windows: int | None = None,
) -> ControllerPlan:
    """Requests for this tick. `counts` are the stored-event counts of the windows in
    `look_back(now, ...)` (others are ignored, except as the `silence_windows` windows before a
    silent one: give their counts too)."""
    span = look_back(now, base_period, allowed_lateness, horizon)
    considered = {w: n for w, n in counts.items() if span.start <= w.start and w.end <= span.end}
    seen = _adopted(cursor, considered, base_period)
    due_windows = {w for w, n in considered.items() if n > (seen[w.key].events if w.key in seen else 0)}
    if silence_windows:
        # An earlier version's cursor did not record silent windows: only newer ones are new.
        known_until = cursor.closed_end if cursor.base_period is None else None
        due_windows |= {
            w
            for w in windows_between(span.start, span.end, base_period)
            if w.key not in seen
            and (known_until is None or w.end > known_until)
            and went_silent(counts, w, silence_windows)
        }
    due = sorted(due_windows, reverse=True)
    requests = []
    for window in due[:max_requests]:
        earlier = seen.get(window.key)
        revision = 0 if earlier is None else earlier.revision + 1
        seen[window.key] = Seen(considered.get(window, 0), revision)
        requests.append(WindowRequest(window, revision))
    kept = {key: s for key, s in seen.items() if _key_start(key) >= span.start}
    return ControllerPlan(
        requests=sorted(requests, key=lambda r: r.window),
        cursor=ControllerCursor(span.end, base_period, MappingProxyType(kept)),
        due=sorted(due[max_requests:]),
        horizon=span.start,
        closed_end=span.end,
    )


def _key_start(key: str) -> datetime:
    return Window.from_key(key, 1).start
