"""Property tests of the controller's pure decisions (`mm_dagster.core.controller`).

A simulated deployment: a monotone clock, an arrival log that grows with on-time and late batches,
and a sensor that ticks now and then. Each tick feeds `plan_requests` exactly what the controller
sensor reads from the arrival log (new spans in `new_window_range`, late spans after the cursor's
arrival id). An oracle that knows every arrival then checks the requests.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.controller import ControllerCursor, ControllerPlan, new_window_range, plan_requests
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window, validate_base_period

from .conftest import BASE_PERIODS

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def test_the_base_periods_under_test_are_all_the_valid_ones() -> None:
    assert BASE_PERIODS == [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440]
    for bp in set(range(0, 1442)) - set(BASE_PERIODS):
        with pytest.raises(MonitoringError):
            validate_base_period(bp)


@dataclass(frozen=True)
class Tick:
    """One controller tick: when it ran, which arrivals the log held, what it decided."""

    now: datetime
    log_max_id: int
    plan: ControllerPlan
    start: datetime


@dataclass
class Deployment:
    """The arrival log and the controller's state across ticks, as the sensor keeps them."""

    base_period: int
    lateness: timedelta
    cap: int
    now: datetime
    log: list[ArrivalSpan] = field(default_factory=list)
    cursor: ControllerCursor = field(default_factory=ControllerCursor)
    ticks: list[Tick] = field(default_factory=list)

    def arrive(self, first: datetime, last: datetime) -> None:
        self.log.append(ArrivalSpan(first, last, 1, len(self.log) + 1))

    def tick(self) -> Tick:
        start, closed_end = new_window_range(self.cursor, self.now, self.base_period, self.lateness, self.cap)
        # What ArrivalLog.spans returns for the sensor's two queries.
        new_spans = [a for a in self.log if a.last_event >= start and a.first_event < closed_end]
        cursor = self.cursor
        late_spans = (
            [a for a in self.log if a.max_id > cursor.arrival_id and a.first_event < cursor.last_end]
            if cursor.last_end is not None
            else []
        )
        plan = plan_requests(
            self.cursor,
            now=self.now,
            base_period=self.base_period,
            allowed_lateness=self.lateness,
            max_catchup_windows=self.cap,
            new_spans=new_spans,
            late_spans=late_spans,
            max_arrival_id=len(self.log),
        )
        tick = Tick(self.now, len(self.log), plan, start)
        self.ticks.append(tick)
        self.cursor = plan.cursor
        return tick


def touches(arrival: ArrivalSpan, window: Window) -> bool:
    """The oracle's own definition: the arrival has events in [window.start, window.end)."""
    return arrival.first_event < window.end and arrival.last_event >= window.start


def windows_touched(arrival: ArrivalSpan, base_period: int) -> list[Window]:
    step = timedelta(minutes=base_period)
    w = Window.containing(arrival.first_event, base_period)
    out = []
    while w.start <= arrival.last_event:
        out.append(w)
        w = Window(w.end, w.end + step)
    return out


# One step of the simulation: a batch arrives (events `back` seconds before now, spanning `length`
# seconds; `back` may reach far behind the cursor, i.e. late data), or the clock moves on and
# the sensor ticks (small steps, or downtime of many windows).
arrival_step = st.tuples(st.just("arrive"), st.floats(0, 1), st.floats(0, 1))
tick_step = st.tuples(st.just("tick"), st.floats(0, 1), st.booleans())


Steps = list[tuple[str, float, object]]


@dataclass(frozen=True)
class Scenario:
    base_period: int
    lateness: timedelta
    cap: int
    start: datetime
    steps: Steps

    def deployment(self) -> Deployment:
        return Deployment(self.base_period, self.lateness, self.cap, self.start)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    bp = draw(st.sampled_from(BASE_PERIODS))
    lateness = timedelta(seconds=draw(st.integers(0, 3 * bp * 60)))
    cap = draw(st.integers(1, 6))
    start = T0 + timedelta(seconds=draw(st.integers(0, 2 * bp * 60)))
    steps = draw(st.lists(st.one_of(arrival_step, tick_step), min_size=1, max_size=30))
    return Scenario(bp, lateness, cap, start, steps)


def simulate(deployment: Deployment, steps: Steps) -> None:
    bp_seconds = deployment.base_period * 60
    for kind, a, b in steps:
        if kind == "arrive":
            back = a * (deployment.cap + 4) * bp_seconds
            length = float(b) * 2 * bp_seconds  # type: ignore[arg-type]
            first = deployment.now - timedelta(seconds=round(back))
            deployment.arrive(first, first + timedelta(seconds=round(length)))
        else:
            downtime = b and a > 0.8
            scale = (deployment.cap + 3) * bp_seconds if downtime else 1.5 * bp_seconds
            deployment.now += timedelta(seconds=round(a * scale))
            deployment.tick()
    # At the end, move past every event and the lateness so that every window is closed.
    newest = max([a.last_event for a in deployment.log] + [deployment.now])
    deployment.now = newest + timedelta(minutes=deployment.base_period) + deployment.lateness
    deployment.tick()


def check_ticks(d: Deployment) -> None:
    """Per-tick rules: closed windows only, aligned, within the cap, a monotone cursor."""
    previous = ControllerCursor()
    for tick in d.ticks:
        plan = tick.plan
        for r in plan.requests:
            assert r.window.end + d.lateness <= tick.now, f"{r.run_key} requested before it closed"
            assert Window.containing(r.window.start, d.base_period) == r.window
        new = [r for r in plan.requests if r.revision == 0]
        revisions = [r for r in plan.requests if r.revision]
        assert len(new) <= d.cap and len(revisions) <= d.cap
        assert len({r.window for r in plan.requests}) == len(plan.requests)
        cursor = plan.cursor
        assert cursor.last_end is not None
        if previous.last_end is not None:
            assert cursor.last_end >= previous.last_end
        assert cursor.arrival_id >= previous.arrival_id
        assert cursor.arrival_id == tick.log_max_id
        assert cursor.last_end <= tick.now - d.lateness
        previous = cursor


def check_requests_are_needed(d: Deployment) -> None:
    """A window is requested only when the log holds events for it that no earlier request of it
    saw; a revision names the newest arrival for it; run keys never repeat."""
    seen_by_last_request: dict[Window, int] = {}
    run_keys: set[str] = set()
    for tick in d.ticks:
        log = d.log[: tick.log_max_id]
        for r in tick.plan.requests:
            assert r.run_key not in run_keys, f"run_key {r.run_key} requested twice"
            run_keys.add(r.run_key)
            ids = [a.max_id for a in log if touches(a, r.window)]
            assert ids, f"{r.window.key} requested without events"
            before = seen_by_last_request.get(r.window)
            if before is not None:
                assert max(ids) > before, f"{r.window.key} requested again without new events"
                assert r.revision > 0
            if r.revision:
                assert r.revision == max(ids)
            seen_by_last_request[r.window] = tick.log_max_id


def check_every_event_is_accounted_for(d: Deployment) -> None:
    """Every window with events is requested after its events arrived, or reported as skipped
    (past the catch-up cap), or lay before the first tick's horizon when the controller started."""
    requested: dict[Window, list[int]] = defaultdict(list)  # log size at each request
    skipped: dict[Window, list[int]] = defaultdict(list)
    for tick in d.ticks:
        for r in tick.plan.requests:
            requested[r.window].append(tick.log_max_id)
        for w in tick.plan.skipped:
            skipped[w].append(tick.log_max_id)
    first = d.ticks[0]
    for arrival in d.log:
        for w in windows_touched(arrival, d.base_period):
            if any(n >= arrival.max_id for n in requested[w] + skipped[w]):
                continue
            before_horizon = w.end <= first.start and arrival.max_id <= first.log_max_id
            assert before_horizon, (
                f"window {w.key} has events (arrival {arrival.max_id}) but was never requested or "
                f"reported skipped after they arrived; requests at log sizes {requested[w]}"
            )


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_controller_requests_each_closed_window_with_events(scenario: Scenario) -> None:
    deployment = scenario.deployment()
    simulate(deployment, scenario.steps)
    check_ticks(deployment)
    check_requests_are_needed(deployment)
    check_every_event_is_accounted_for(deployment)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.sampled_from(BASE_PERIODS))
def test_changing_base_period_loses_no_events(scenario: Scenario, new_base_period: int) -> None:
    """The cursor is a time: after a base_period change every event still falls in a requested
    (or skipped) window of one of the two base periods, issued after the event arrived."""
    deployment, steps = scenario.deployment(), scenario.steps
    half = len(steps) // 2
    simulate(deployment, steps[:half])
    deployment.base_period = new_base_period
    simulate(deployment, steps[half:])
    cursors = [t.plan.cursor for t in deployment.ticks]
    for a, b in pairwise(cursors):
        assert a.last_end is not None and b.last_end is not None
        assert b.last_end >= a.last_end and b.arrival_id >= a.arrival_id
    first = deployment.ticks[0]
    covered: list[tuple[Window, int]] = []
    for tick in deployment.ticks:
        for r in tick.plan.requests:
            assert r.window.end + deployment.lateness <= tick.now
            covered.append((r.window, tick.log_max_id))
        covered += [(w, tick.log_max_id) for w in tick.plan.skipped]
    for arrival in deployment.log:
        # Event times every 30 s over the arrival's span, both ends included.
        span = int((arrival.last_event - arrival.first_event).total_seconds())
        points = {arrival.first_event + timedelta(seconds=s) for s in range(0, span + 1, 30)}
        points.add(arrival.last_event)
        for t in points:
            if any(w.start <= t < w.end and n >= arrival.max_id for w, n in covered):
                continue
            assert t < first.start and arrival.max_id <= first.log_max_id, (
                f"event at {t:%H:%M:%S} (arrival {arrival.max_id}) is in no requested window"
            )
