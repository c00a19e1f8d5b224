"""Alert rules (pure): criteria, cooldown and reset policy for one (alert, entity).

Event times are the events' window ends (data time, so backfills evaluate like live traffic);
`now` is the processing clock, used for activation and cooldown.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Generic, TypeVar

from mm_dagster.core.alerting.config import AlertConfig, ResetPolicy
from mm_dagster.core.alerting.events import AlertEvent

StateKey = tuple[str, str]  # (alert name, entity)


@dataclass(frozen=True)
class EntityState:
    active: bool = False
    activated_at: datetime | None = None
    last_event_at: datetime | None = None
    last_notified_at: datetime | None = None
    recent: tuple[datetime, ...] = ()


def cooldown_over(alert: AlertConfig, state: EntityState, now: datetime) -> bool:
    # __post_init__ has made `cooldown` a timedelta; the field's type also admits what it parses.
    return state.last_notified_at is None or now - state.last_notified_at >= alert.cooldown  # type: ignore[operator]


def on_event(
    alert: AlertConfig, state: EntityState, event_time: datetime, now: datetime
) -> tuple[EntityState, bool]:
    """Apply one event; returns the new state and whether to notify."""
    period = alert.criteria.period
    recent = tuple(sorted(t for t in (*state.recent, event_time) if t > event_time - period))
    last_event = max(event_time, state.last_event_at) if state.last_event_at else event_time
    state = replace(state, recent=recent, last_event_at=last_event)
    if not state.active:
        if len(recent) < alert.criteria.count:
            return state, False
        state = replace(state, active=True, activated_at=now)
    if not cooldown_over(alert, state, now):
        return state, False
    return replace(state, last_notified_at=now), True


def on_clean_window(alert: AlertConfig, state: EntityState, window_end: datetime) -> EntityState:
    """A clean window for the entity: auto-reset alerts go inactive if it is newer than the
    last event. Manual-reset alerts stay active."""
    if (
        alert.reset_policy == ResetPolicy.auto
        and state.active
        and (state.last_event_at is None or window_end > state.last_event_at)
    ):
        return replace(state, active=False, activated_at=None, recent=())
    return state


def manual_reset(state: EntityState) -> EntityState:
    return replace(state, active=False, activated_at=None, recent=())


AnyEvent = TypeVar("AnyEvent", bound=AlertEvent)


@dataclass(frozen=True)
class RulesOutcome(Generic[AnyEvent]):
    changed: dict[StateKey, EntityState]  # the states the evaluation changed
    fired: dict[str, list[AnyEvent]]  # by alert name, in the order alerts first fired


def apply_rules(
    alerts: Mapping[str, AlertConfig],
    events: Sequence[AnyEvent],
    clean: Sequence[tuple[str, datetime]],
    states: Mapping[StateKey, EntityState],
    now: datetime,
) -> RulesOutcome[AnyEvent]:
    """One evaluation: `events` (oldest window first) through every alert watching them, then the
    clean (entity, window end) pairs through every alert active on the entity. `states` holds
    the stored state of every (alert, entity) concerned."""
    current = dict(states)
    fired: dict[str, list[AnyEvent]] = defaultdict(list)
    changed: set[StateKey] = set()
    for event in events:
        for alert in alerts.values():
            if not alert.watches(event):
                continue
            key = (alert.name, event.entity)
            current[key], notify = on_event(alert, current.get(key, EntityState()), event.window_end, now)
            changed.add(key)
            if notify:
                fired[alert.name].append(event)
    for entity, window_end in clean:
        for alert in alerts.values():
            key = (alert.name, entity)
            if key in current and current[key].active:
                new_state = on_clean_window(alert, current[key], window_end)
                if new_state != current[key]:
                    current[key] = new_state
                    changed.add(key)
    return RulesOutcome({key: current[key] for key in changed}, dict(fired))
