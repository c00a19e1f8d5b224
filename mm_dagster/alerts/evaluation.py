"""Alert evaluation: events in, notifications queued.

1. `record_report` stores one event per detected/suspected result and per app failure; the
   unique key (kind, entity, window_start) makes re-runs and backfills add nothing new.
2. `evaluate` claims every not-yet-evaluated event and, in the same transaction, updates the
   alert states and writes the notifications to the outbox. A crash before the commit leaves the
   events unevaluated; nothing is lost or notified twice.

Notifications are grouped: one message per (alert, channel) per evaluation, listing every entity
that fired (the first `group_limit` in detail), never one message per event. A failed asset check
queues one message per check channel, once per (check, window).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import AlertConfig
from mm_dagster.core.alerting.events import clean_entities_of_report, events_of_report
from mm_dagster.core.alerting.messages import GROUP_LIMIT, alert_message, check_failure_message
from mm_dagster.core.alerting.outbox import alert_entries, check_failure_entries
from mm_dagster.core.alerting.rules import apply_rules
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import EventKind
from mm_dagster.storage.alert_store import AlertStore


class AlertEvaluation:
    def __init__(
        self,
        store: AlertStore,
        alerts: Mapping[str, AlertConfig],
        *,
        check_channels: Sequence[Channel] = (),
        project: str = "default",
        clock: Clock = utcnow,
        group_limit: int = GROUP_LIMIT,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.check_channels = list(check_channels)
        self.project = project
        self.clock = clock
        self.group_limit = group_limit

    def record_report(self, report: AppWindowReport) -> int:
        """Store the report's events, then evaluate. Returns how many events were new."""
        new = self.store.insert_events(events_of_report(report), created_at=self.clock())
        self.evaluate(clean=clean_entities_of_report(report))
        return new

    def evaluate(self, clean: Sequence[tuple[str, datetime]] = ()) -> list[int]:
        """Evaluate all unevaluated events, and the clean (entity, window end) pairs for
        auto-reset; returns the ids of the notifications queued."""
        now = self.clock()
        with self.store.transaction() as tx:
            watched = {EventKind(kind) for alert in self.alerts.values() for kind in alert.trigger}
            events = tx.claim_unevaluated_events(watched)
            states = tx.load_states({e.entity for e in events}, with_active=bool(clean))
            outcome = apply_rules(self.alerts, events, clean, states, now)
            tx.save_states(outcome.changed, now)
            ids = []
            for alert_name, fired in outcome.fired.items():
                alert = self.alerts[alert_name]
                message = alert_message(alert, fired, self.project, self.group_limit)
                ids += [tx.enqueue(entry, now) for entry in alert_entries(alert, fired, message)]
            return ids

    def enqueue_check_failure(
        self, check: str, partition: str | None, severity: str, metadata: dict[str, Any]
    ) -> bool:
        """Queue one notification per check channel for a failed check on a window; False if that
        (check, window) was already queued, or there are no check channels."""
        if not self.check_channels:
            return False
        now = self.clock()
        message = check_failure_message(check, partition, severity, metadata, self.project)
        entries = check_failure_entries(self.check_channels, check, partition, message)
        return self.store.enqueue_unless_queued(entries, now)
