"""Property tests of the controller's pure decisions (`mm_dagster.core.controller`).

A simulated deployment: a monotone clock, an arrival log that grows with on-time and late batches,
and a sensor that ticks now and then. Each tick feeds `plan_requests` exactly what the controller
sensor reads from the arrival log (the stored-event counts of the windows in its look-back). An
oracle that knows every arrival then checks the requests.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.controller import (
    ControllerCursor,
    ControllerPlan,
    look_back,
    plan_requests,
    window_counts,
)
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window, validate_base_period

from .conftest import BASE_PERIODS

T0 = datetime(2026, 11, 20, tzinfo=UTC)
HORIZON = timedelta(days=30)  # longer than any simulation: nothing falls out of the look-back


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
        self.log.append(ArrivalSpan(first, last, 1))

    def tick(self) -> Tick:
        span = look_back(self.now, self.base_period, self.lateness, HORIZON)
        # What ArrivalLog.spans returns for the sensor's query.
        stored = [a for a in self.log if a.last_event >= span.start and a.first_event < span.end]
        plan = plan_requests(
            self.cursor,
            now=self.now,
            base_period=self.base_period,
            allowed_lateness=self.lateness,
            horizon=HORIZON,
            max_requests=self.cap,
            counts=window_counts(stored, self.base_period),
        )
        tick = Tick(self.now, len(self.log), plan)
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
    # At the end, move past every event and the lateness so that every window is closed, and tick
    # until nothing is due (the cap spreads requests over ticks).
    newest = max([a.last_event for a in deployment.log] + [deployment.now])
    deployment.now = newest + timedelta(minutes=deployment.base_period) + deployment.lateness
    windows_with_events = len(window_counts(deployment.log, deployment.base_period))
    for _ in range(windows_with_events + 2):
        deployment.now += timedelta(seconds=1)
        if not deployment.tick().plan.due:
            break
    assert not deployment.ticks[-1].plan.due


def check_ticks(d: Deployment) -> None:
    """Per-tick rules: closed windows only, aligned, within the cap, a monotone cursor."""
    previous = ControllerCursor()
    for tick in d.ticks:
        plan = tick.plan
        for r in plan.requests:
            assert r.window.end + d.lateness <= tick.now, f"{r.run_key} requested before it closed"
            assert Window.containing(r.window.start, d.base_period) == r.window
        assert len(plan.requests) <= d.cap
        assert len({r.window for r in plan.requests}) == len(plan.requests)
        cursor = plan.cursor
        assert cursor.closed_end is not None
        if previous.closed_end is not None:
            assert cursor.closed_end >= previous.closed_end
        assert cursor.closed_end <= tick.now - d.lateness
        previous = cursor


def check_requests_are_needed(d: Deployment) -> None:
    """A window is requested only when the log holds events for it that no earlier request of it
    saw; its revisions count 0, 1, 2, ...; run keys never repeat."""
    seen_by_last_request: dict[Window, int] = {}
    revisions: dict[Window, int] = {}
    run_keys: set[str] = set()
    for tick in d.ticks:
        log = d.log[: tick.log_max_id]
        for r in tick.plan.requests:
            assert r.run_key not in run_keys, f"run_key {r.run_key} requested twice"
            run_keys.add(r.run_key)
            ids = [i for i, a in enumerate(log, start=1) if touches(a, r.window)]
            assert ids, f"{r.window.key} requested without events"
            before = seen_by_last_request.get(r.window)
            if before is not None:
                assert max(ids) > before, f"{r.window.key} requested again without new events"
            assert r.revision == revisions.get(r.window, -1) + 1
            revisions[r.window] = r.revision
            seen_by_last_request[r.window] = tick.log_max_id


def check_every_event_is_accounted_for(d: Deployment) -> None:
    """Every window with events is requested after its events arrived (none is dropped)."""
    requested: dict[Window, list[int]] = defaultdict(list)  # log size at each request
    for tick in d.ticks:
        for r in tick.plan.requests:
            requested[r.window].append(tick.log_max_id)
    for arrival_id, arrival in enumerate(d.log, start=1):
        for w in windows_touched(arrival, d.base_period):
            assert any(n >= arrival_id for n in requested[w]), (
                f"window {w.key} has events (arrival {arrival_id}) but was never requested after "
                f"they arrived; requests at log sizes {requested[w]}"
            )


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_controller_requests_each_closed_window_with_events(scenario: Scenario) -> None:
    deployment = scenario.deployment()
    simulate(deployment, scenario.steps)
    check_ticks(deployment)
    check_requests_are_needed(deployment)
    check_every_event_is_accounted_for(deployment)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(scenarios(), st.sampled_from(BASE_PERIODS))
def test_changing_base_period_loses_no_events(scenario: Scenario, new_base_period: int) -> None:
    """The cursor is a time: after a base_period change every event still falls in a requested
    window of one of the two base periods, issued after the event arrived."""
    deployment, steps = scenario.deployment(), scenario.steps
    half = len(steps) // 2
    simulate(deployment, steps[:half])
    deployment.base_period = new_base_period
    simulate(deployment, steps[half:])
    cursors = [t.plan.cursor for t in deployment.ticks]
    for a, b in pairwise(cursors):
        assert a.closed_end is not None and b.closed_end is not None
        # A coarser base_period may close its newest window earlier than the finer one did.
        assert b.closed_end >= a.closed_end or a.base_period != b.base_period
    run_keys = [r.run_key for t in deployment.ticks for r in t.plan.requests]
    assert len(run_keys) == len(set(run_keys))
    covered: list[tuple[Window, int]] = []
    for tick in deployment.ticks:
        for r in tick.plan.requests:
            assert r.window.end + deployment.lateness <= tick.now
            covered.append((r.window, tick.log_max_id))
    for arrival_id, arrival in enumerate(deployment.log, start=1):
        # Event times every 30 s over the arrival's span, both ends included.
        span = int((arrival.last_event - arrival.first_event).total_seconds())
        points = {arrival.first_event + timedelta(seconds=s) for s in range(0, span + 1, 30)}
        points.add(arrival.last_event)
        for t in points:
            assert any(w.start <= t < w.end and n >= arrival_id for w, n in covered), (
                f"event at {t:%H:%M:%S} (arrival {arrival_id}) is in no requested window"
            )
