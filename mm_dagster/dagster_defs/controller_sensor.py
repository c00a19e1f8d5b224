"""The controller: a sensor that requests one run per closed window (spec §5). The decisions are
`core.controller.plan_requests`; this module only reads the arrival log and talks to Dagster."""

from collections.abc import Mapping, Sequence
from datetime import timedelta

from dagster import (
    AssetObservation,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from mm_dagster.applications.base import silence_lookback
from mm_dagster.core.clock import Clock
from mm_dagster.core.controller import (
    ControllerCursor,
    ControllerPlan,
    look_back,
    plan_requests,
    window_counts,
)
from mm_dagster.core.windows import Window, windows_between
from mm_dagster.dagster_defs.assets import WINDOW_EVENTS
from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.resources import MonitoringResource

MAX_KEYS_LOGGED = 12


def _windows(n: int) -> str:
    return f"{n} window" if n == 1 else f"{n} windows"


def _keys(windows: Sequence[Window]) -> str:
    shown = ", ".join(w.key for w in windows[:MAX_KEYS_LOGGED])
    return shown + (f" and {len(windows) - MAX_KEYS_LOGGED} more" if len(windows) > MAX_KEYS_LOGGED else "")


def tick_decisions(
    cursor: ControllerCursor, plan: ControllerPlan, counts: Mapping[Window, int], config: MonitoringConfig
) -> list[str]:
    """What a tick decided, in words for its log: the windows it requests (new, re-analysed
    because late events arrived, silent) and the closed windows it skips, with why."""
    assert plan.horizon is not None and plan.closed_end is not None  # set by plan_requests
    closed = list(windows_between(plan.horizon, plan.closed_end, config.base_period))
    runnable = [r for r in plan.requests if r.window.start >= config.start]
    new = [r.window for r in runnable if r.revision == 0 and counts.get(r.window, 0)]
    silent = [r.window for r in runnable if r.revision == 0 and not counts.get(r.window, 0)]
    late = [r for r in runnable if r.revision > 0]
    requested = {r.window for r in plan.requests} | set(plan.due)
    analysed = [w for w in closed if w not in requested and w.key in cursor.seen]
    empty = [w for w in closed if w not in requested and w.key not in cursor.seen]
    lines = [
        f"look-back {plan.horizon:%Y-%m-%d %H:%M} to {plan.closed_end:%Y-%m-%d %H:%M} UTC "
        f"({len(closed)} closed windows): requesting {len(runnable)} run{'' if len(runnable) == 1 else 's'}"
    ]
    if new:
        lines.append(f"{_windows(len(new))} with new events: {_keys(new)}")
    for r in late[:MAX_KEYS_LOGGED]:
        before = cursor.seen[r.window.key].events if r.window.key in cursor.seen else 0
        lines.append(
            f"late events: window {r.window.key} re-requested as revision {r.revision} "
            f"({counts.get(r.window, 0)} events stored, {before} at its last analysis)"
        )
    if len(late) > MAX_KEYS_LOGGED:
        lines.append(f"late events: {_windows(len(late) - MAX_KEYS_LOGGED)} more re-requested")
    if silent:
        lines.append(f"{_windows(len(silent))} requested because endpoints went silent: {_keys(silent)}")
    if analysed:
        lines.append(f"skipped {_windows(len(analysed))} already analysed, no new events")
    if empty:
        lines.append(f"skipped {_windows(len(empty))} without events")
    return lines


def _skip_reason(before_start: Sequence[Window]) -> str:
    if before_start:
        return f"{_windows(len(before_start))} with new events before partitions_start"
    return "no closed window with new events"


def build_controller_sensor(config: MonitoringConfig, clock: Clock) -> SensorDefinition:
    names = config.names
    silence = silence_lookback(config.apps)
    # Counts of the windows before the look-back too, to tell whether its first windows are silent.
    before_look_back = timedelta(minutes=config.base_period * (silence or 0))

    @sensor(
        name=names.controller_sensor,
        job_name=names.job,
        minimum_interval_seconds=config.sensor_interval_seconds,
        default_status=(
            DefaultSensorStatus.RUNNING if config.sensor_running_by_default else DefaultSensorStatus.STOPPED
        ),
        required_resource_keys={names.resource_key},
        description=f"Requests one monitoring run per closed {config.base_period}-minute window.",
    )
    def mm_controller(context: SensorEvaluationContext) -> SensorResult:
        resource = getattr(context.resources, names.resource_key)
        assert isinstance(resource, MonitoringResource)
        monitoring = resource.monitoring
        arrivals = monitoring.arrivals
        cursor = ControllerCursor.from_json(context.cursor)
        now = clock()
        span = look_back(now, config.base_period, config.allowed_lateness, config.late_data_horizon)
        slot = monitoring.events.base_period
        stored = arrivals.spans(
            events_from=span.start - before_look_back, events_before=span.end, store_base_period=slot
        )
        counts = window_counts(stored, config.base_period)
        plan = plan_requests(
            cursor,
            now=now,
            base_period=config.base_period,
            allowed_lateness=config.allowed_lateness,
            horizon=config.late_data_horizon,
            max_requests=config.max_catchup_windows,
            counts=counts,
            silence_windows=silence,
        )
        backfill = f"backfill them from the UI (Jobs → {names.job} → partitions → Launch backfill)"
        if plan.due:
            context.log.warning(
                f"{len(plan.due)} windows with new events, from {plan.due[0].key} to {plan.due[-1].key}, "
                f"wait for the next ticks (at most max_catchup_windows={config.max_catchup_windows} "
                "requests per tick)"
            )
        history_events = 0
        if cursor.closed_end is None:
            history = arrivals.spans(
                events_before=span.start, store_base_period=monitoring.events.base_period
            )
            history_events = sum(s.events for s in history)
            if history:
                first = Window.containing(min(s.first_event for s in history), config.base_period)
                context.log.warning(
                    f"first tick: {sum(s.events for s in history)} events in windows from {first.key} "
                    f"to before {span.start:%Y-%m-%d-%H:%M} are older than late_data_horizon="
                    f"{config.late_data_horizon} and were not requested; {backfill}"
                )
        before_start = [r.window for r in plan.requests if r.window.start < config.start]
        if before_start:
            context.log.warning(
                f"{len(before_start)} windows with events from {before_start[0].key} to "
                f"{before_start[-1].key} are before partitions_start {config.start:%Y-%m-%d %H:%M} and "
                "cannot be run: move MonitoringConfig.partitions_start earlier to analyse them"
            )
        for line in tick_decisions(cursor, plan, counts, config):
            context.log.info(line)
        requests = [
            RunRequest(
                run_key=r.run_key,
                partition_key=r.window.key,
                tags={
                    "mm/window": r.window.key,
                    "mm/revision": str(r.revision),
                    "dagster/max_runtime": str(config.max_run_seconds),
                },
            )
            for r in plan.requests
            if r.window.start >= config.start
        ]
        # The same counts on the window asset, so the UI plots what waits or will not run.
        backlog = AssetObservation(
            asset_key=names.asset_key(WINDOW_EVENTS),
            metadata={
                "windows_requested": len(requests),
                "windows_waiting": len(plan.due),
                "windows_before_partitions_start": len(before_start),
                "history_events_not_requested": history_events,
            },
        )
        return SensorResult(
            run_requests=requests,
            cursor=plan.cursor.to_json(),
            asset_events=[backlog],
            skip_reason=None if requests else _skip_reason(before_start),
        )

    return mm_controller
