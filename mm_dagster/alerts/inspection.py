"""Inspecting and operating alerts: their states, the events they watch, manual reset."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from mm_dagster.core.alerting.config import AlertConfig
from mm_dagster.core.alerting.events import StoredAlertEvent
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import AlertConfigError
from mm_dagster.storage.alert_store import AlertStore


@dataclass(frozen=True)
class AlertSummary:
    """A configured alert with its active entities and last notification."""

    name: str
    severity: str
    reset_policy: str
    active_entities: list[str]
    state: str  # "active" if any entity is, else "inactive"
    last_notified_at: datetime | None
    failed_notifications: int  # given up on (re-queue them with `mm alerts resend`)


class AlertInspection:
    def __init__(self, store: AlertStore, alerts: Mapping[str, AlertConfig], clock: Clock = utcnow) -> None:
        self.store = store
        self.alerts = alerts
        self.clock = clock

    def list_alerts(self) -> list[AlertSummary]:
        """Every configured alert with its active entities and last notification."""
        states = self.store.states()
        failed = self.store.failed_counts()
        summaries = []
        for name, alert in self.alerts.items():
            mine = {entity: state for (a, entity), state in states.items() if a == name}
            notified = [s.last_notified_at for s in mine.values() if s.last_notified_at]
            summaries.append(
                AlertSummary(
                    name=name,
                    severity=str(alert.severity),
                    reset_policy=str(alert.reset_policy),
                    active_entities=[entity for entity, s in mine.items() if s.active],
                    state="active" if any(s.active for s in mine.values()) else "inactive",
                    last_notified_at=max(notified) if notified else None,
                    failed_notifications=failed.get(name, 0),
                )
            )
        return summaries

    def events(self, alert: str | None = None, limit: int = 1000) -> list[StoredAlertEvent]:
        """The newest events, newest window first; with `alert`, those it watches among the
        newest `10 * limit`."""
        events = self.store.recent_events(limit * 10)
        if alert:
            config = self.alerts[alert]
            events = [e for e in events if config.watches(e)]
        return events[:limit]

    def reset(self, alert: str, entity: str | None = None) -> int:
        """Reset an alert (all its entities, or one) to inactive. Returns how many were reset."""
        if alert not in self.alerts:
            raise AlertConfigError(f"unknown alert {alert!r} (configured: {sorted(self.alerts)})")
        return self.store.reset(alert, entity, self.clock())
