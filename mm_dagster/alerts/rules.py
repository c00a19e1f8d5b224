"""Alert rules (pure): criteria, cooldown and reset policy for one (alert, entity).

Event times are the events' window ends (data time, so backfills evaluate like live traffic);
`now` is the processing clock, used for activation and cooldown.
"""

from dataclasses import dataclass, replace
from datetime import datetime

from mm_dagster.alerts.config import AlertConfig, ResetPolicy


@dataclass(frozen=True)
class EntityState:
    active: bool = False
    activated_at: datetime | None = None
    last_event_at: datetime | None = None
    last_notified_at: datetime | None = None
    recent: tuple[datetime, ...] = ()


def cooldown_over(alert: AlertConfig, state: EntityState, now: datetime) -> bool:
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
