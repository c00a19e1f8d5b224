"""Alert rules as pure logic, on a fake clock."""

from datetime import UTC, datetime, timedelta

from mm_dagster.alerts import AlertConfig, Criteria, LogChannel
from mm_dagster.core.alerting.rules import EntityState, manual_reset, on_clean_window, on_event

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def alert(**kwargs: object) -> AlertConfig:
    return AlertConfig(name="a", trigger=["data-drift-detected"], notifications=[LogChannel()], **kwargs)  # type: ignore[arg-type]


def test_default_notifies_on_first_event_then_respects_cooldown() -> None:
    a = alert()
    state, notify = on_event(a, EntityState(), minutes(10), now=minutes(11))
    assert notify and state.active and state.last_notified_at == minutes(11)
    state, notify = on_event(a, state, minutes(20), now=minutes(21))
    assert not notify and state.active  # within the 1h cooldown
    state, notify = on_event(a, state, minutes(80), now=minutes(81))
    assert notify and state.last_notified_at == minutes(81)


def test_criteria_needs_count_events_within_period() -> None:
    a = alert(criteria=Criteria(count=3, period=timedelta(minutes=30)))
    s = EntityState()
    s, n1 = on_event(a, s, minutes(10), minutes(10))
    s, n2 = on_event(a, s, minutes(20), minutes(20))
    s, n3 = on_event(a, s, minutes(50), minutes(50))  # 10 fell out of the 30-minute period
    assert not (n1 or n2 or n3) and not s.active
    s, n4 = on_event(a, s, minutes(60), minutes(60))  # 40 < t <= 60 ... 20 dropped: 50, 60 only
    assert not n4
    s, n5 = on_event(a, s, minutes(70), minutes(70))
    assert n5 and s.active


def test_auto_reset_on_a_clean_window_and_notify_again_later() -> None:
    a = alert(cooldown=timedelta(0))
    s, _ = on_event(a, EntityState(), minutes(10), minutes(10))
    assert on_clean_window(a, s, minutes(10)).active  # same window: not newer than the event
    s = on_clean_window(a, s, minutes(20))
    assert not s.active
    s, notify = on_event(a, s, minutes(30), minutes(30))
    assert notify and s.active


def test_manual_reset_policy_stays_active_until_reset() -> None:
    a = alert(reset_policy="manual", cooldown="1h")
    s, _ = on_event(a, EntityState(), minutes(10), minutes(10))
    assert on_clean_window(a, s, minutes(30)).active
    s = manual_reset(s)
    assert not s.active
    s, notify = on_event(a, s, minutes(40), minutes(40))
    assert not notify and s.active  # reactivated, but still within the cooldown of the first


def test_zero_cooldown_notifies_every_event() -> None:
    a = alert(cooldown=0)
    s = EntityState()
    notes = []
    for m in (10, 20, 30):
        s, n = on_event(a, s, minutes(m), minutes(m))
        notes.append(n)
    assert notes == [True, True, True]
