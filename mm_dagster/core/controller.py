"""The controller's decisions (pure): which closed windows to request, given arrivals and a cursor.

- A window is closed when `end + allowed_lateness <= now`; only closed windows are requested.
- Each window with events is requested once, run_key `mm-<window key>`.
- Events that arrive for an already-requested window re-request it with run_key
  `mm-<window key>-rev<arrival id>`: late data is analysed, not lost.
- After downtime, at most `max_catchup_windows` of the newest windows are requested; older ones
  are reported as skipped (a backfill covers them). The same cap applies to windows re-opened by
  late events in one tick; the older ones are reported as skipped too.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.windows import Window, closed_before, to_utc


@dataclass(frozen=True)
class ControllerCursor:
    last_end: datetime | None = None
    arrival_id: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "last_end": self.last_end.isoformat() if self.last_end else None,
                "arrival_id": self.arrival_id,
            }
        )

    @classmethod
    def from_json(cls, raw: str | None) -> "ControllerCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        last_end = data.get("last_end")
        return cls(to_utc(last_end) if last_end else None, int(data.get("arrival_id", 0)))


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
    skipped: list[Window] = field(default_factory=list)
    closed_end: datetime | None = None


def windows_of(spans: Iterable[ArrivalSpan], base_period: int) -> dict[Window, int]:
    """Windows touched by each span, with the newest arrival id that touched them."""
    step = timedelta(minutes=base_period)
    touched: dict[Window, int] = {}
    for span in spans:
        w = Window.containing(span.first_event, base_period)
        while w.start <= span.last_event:
            touched[w] = max(touched.get(w, 0), span.max_id)
            w = Window(w.end, w.end + step)
    return touched


def new_window_range(
    cursor: ControllerCursor,
    now: datetime,
    base_period: int,
    allowed_lateness: timedelta,
    max_catchup_windows: int,
) -> tuple[datetime, datetime]:
    """[from, to): the window starts this tick may newly request. After a base_period change the
    cursor may lie inside a window; that window is requested whole, not skipped."""
    closed_end = closed_before(now, allowed_lateness, base_period)
    earliest = closed_end - timedelta(minutes=base_period * max_catchup_windows)
    if cursor.last_end is None:
        return earliest, closed_end
    return max(Window.containing(cursor.last_end, base_period).start, earliest), closed_end


def plan_requests(
    cursor: ControllerCursor,
    *,
    now: datetime,
    base_period: int,
    allowed_lateness: timedelta,
    max_catchup_windows: int,
    new_spans: Iterable[ArrivalSpan],
    late_spans: Iterable[ArrivalSpan],
    max_arrival_id: int,
) -> ControllerPlan:
    """Requests for this tick. `new_spans` cover [from, to) of `new_window_range`; `late_spans`
    are arrivals after `cursor.arrival_id` for events before `cursor.last_end`."""
    start, closed_end = new_window_range(cursor, now, base_period, allowed_lateness, max_catchup_windows)
    new = {
        w: i
        for w, i in windows_of(new_spans, base_period).items()
        if start <= w.start and w.end <= closed_end
    }
    # A window that starts before the cursor (base_period changed) was partly requested under the
    # old base_period, possibly with the same key: it is a revision.
    requests = [
        WindowRequest(w, revision=i if cursor.last_end and w.start < cursor.last_end else 0)
        for w, i in sorted(new.items())
    ]
    skipped: list[Window] = []
    if cursor.last_end is not None and start > cursor.last_end:
        step = timedelta(minutes=base_period)
        w = Window.containing(cursor.last_end, base_period)
        while w.start < start:
            skipped.append(w)
            w = Window(w.end, w.end + step)
    if cursor.last_end is not None:
        late = {w: i for w, i in windows_of(late_spans, base_period).items() if w.end <= cursor.last_end}
        newest_first = sorted(late, reverse=True)
        requests += [WindowRequest(w, revision=late[w]) for w in sorted(newest_first[:max_catchup_windows])]
        skipped = sorted(skipped + newest_first[max_catchup_windows:])  # reported, never silently lost
    last_end = closed_end if cursor.last_end is None else max(cursor.last_end, closed_end)
    return ControllerPlan(
        requests=requests,
        cursor=ControllerCursor(last_end, max(cursor.arrival_id, max_arrival_id)),
        skipped=skipped,
        closed_end=closed_end,
    )
