"""Delivery of the outbox: `deliver_due` sends due notifications, records every attempt, and
retries failures with exponential backoff. It runs outside monitoring runs, so a dead channel
never blocks them."""

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import CHECKS_ALERT, AlertConfig
from mm_dagster.core.alerting.outbox import AttemptOutcome, Notification, NotificationStatus
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import AlertConfigError, DeliveryError
from mm_dagster.storage.alert_store import AlertStore

log = logging.getLogger("mm_dagster.alerts")
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
REMOVED_CHANNEL_TIMEOUT_SECONDS = 10.0


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)


def lease(channel: Channel | None) -> timedelta:
    """How long a sender holds a notification: past the channel's timeout, with margin."""
    timeout = REMOVED_CHANNEL_TIMEOUT_SECONDS if channel is None else channel.timeout_seconds
    return timedelta(seconds=timeout * 3 + 30)


class NotificationDelivery:
    def __init__(
        self,
        store: AlertStore,
        alerts: Mapping[str, AlertConfig],
        *,
        check_channels: Sequence[Channel] = (),
        clock: Clock = utcnow,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base: timedelta = BACKOFF_BASE,
        backoff_max: timedelta = BACKOFF_MAX,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.check_channels = list(check_channels)
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    def backoff(self, attempts: int) -> timedelta:
        factor: int = 2 ** max(attempts - 1, 0)
        return min(self.backoff_base * factor, self.backoff_max)

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Send due notifications once each; failures are rescheduled with backoff."""
        now = self.clock()
        report = DeliveryReport()
        for note in self.store.due_notifications(now, limit):
            channel = self._channel(note.alert, note.channel_index)
            if not self.store.claim_notification(note.id, now, until=now + lease(channel)):
                continue
            started = time.perf_counter()
            error: str | None = None
            if channel is None:
                error = f"channel {note.channel!r} of alert {note.alert!r} is no longer configured"
            else:
                try:
                    channel.send(note.message())
                except (DeliveryError, AlertConfigError) as exc:
                    error = str(exc)
            outcome = self._outcome(note, error, (time.perf_counter() - started) * 1000, channel is None)
            self.store.record_attempt(note.id, outcome)
            if outcome.status == NotificationStatus.sent:
                report.sent += 1
                report.lines.append(f"sent {note.alert} via {note.channel}: {note.subject}")
            elif outcome.status == NotificationStatus.failed:
                report.failed += 1
                report.lines.append(f"gave up {note.alert} via {note.channel}: {error}")
            else:
                report.retrying += 1
                report.lines.append(f"retrying {note.alert} via {note.channel}: {error}")
        return report

    def _channel(self, alert: str, index: int) -> Channel | None:
        if alert == CHECKS_ALERT:
            channels: Sequence[Channel] = self.check_channels
        else:
            channels = self.alerts[alert].notifications if alert in self.alerts else []
        return channels[index] if index < len(channels) else None

    def _outcome(
        self, note: Notification, error: str | None, duration_ms: float, fatal: bool
    ) -> AttemptOutcome:
        """Sent; failed for good (a fatal error, or the last attempt); or due again after backoff."""
        now = self.clock()
        attempts = note.attempts + 1
        if error is None:
            return AttemptOutcome(now, attempts, None, duration_ms, NotificationStatus.sent)
        log.warning(
            "notification %s (%s via %s) failed, attempt %d: %s",
            note.id,
            note.alert,
            note.channel,
            attempts,
            error,
        )
        if fatal or attempts >= self.max_attempts:
            return AttemptOutcome(now, attempts, error, duration_ms, NotificationStatus.failed)
        return AttemptOutcome(
            now, attempts, error, duration_ms, NotificationStatus.pending, now + self.backoff(attempts)
        )
