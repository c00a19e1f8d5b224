"""Delivery of the outbox: `deliver_due` sends due notifications, records every attempt, and
retries failures with exponential backoff. It runs outside monitoring runs, so a dead channel
never blocks them, and any exception of one channel is a failed attempt of that notification
only. A notification given up on raises an `mm-notification-failed` event; `resend` (or, opted
in, the channel's next success) puts failed notifications back in the queue."""

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from mm_dagster.alerts.secrets import redact_urls
from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import CHECKS_ALERT, AlertConfig
from mm_dagster.core.alerting.events import notification_failed_event
from mm_dagster.core.alerting.outbox import AttemptOutcome, Notification, NotificationStatus
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import AlertConfigError, DeliveryError
from mm_dagster.storage.alert_store import AlertStore

log = logging.getLogger("mm_dagster.alerts")
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
REMOVED_CHANNEL_TIMEOUT_SECONDS = 10.0
ERROR_LIMIT = 2000


def attempt_error(exc: BaseException) -> str:
    """What a failed send stores and logs: the channel's own message for a `DeliveryError`, the
    exception type and message otherwise; URLs without userinfo or query string."""
    own = isinstance(exc, DeliveryError | AlertConfigError)
    text = str(exc) if own else f"{type(exc).__name__}: {exc}"
    return redact_urls(text)[:ERROR_LIMIT]


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    failure_events: int = 0  # mm-notification-failed events stored
    requeued: int = 0  # failed notifications re-queued after their channel delivered again
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
        resend_when_healthy: bool = False,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.check_channels = list(check_channels)
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.resend_when_healthy = resend_when_healthy

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
                except Exception as exc:  # one bad notification never stalls the rest
                    error = attempt_error(exc)
            outcome = self._outcome(note, error, (time.perf_counter() - started) * 1000, channel is None)
            self.store.record_attempt(note.id, outcome)
            if outcome.status == NotificationStatus.sent:
                report.sent += 1
                report.lines.append(f"sent {note.alert} via {note.channel}: {note.subject}")
                if self.resend_when_healthy:
                    self._requeue_after_success(note, report)
            elif outcome.status == NotificationStatus.failed:
                report.failed += 1
                report.lines.append(f"gave up {note.alert} via {note.channel}: {error}")
                self._record_given_up(note, error, report)
            else:
                report.retrying += 1
                report.lines.append(f"retrying {note.alert} via {note.channel}: {error}")
        return report

    def resend(self, alert: str | None = None, notification_id: int | None = None) -> int:
        """Put failed notifications (of `alert`, or the one `notification_id`, or all) back in the
        queue, due now with their attempts count reset; their attempts stay stored. Returns how
        many."""
        if alert is not None and alert != CHECKS_ALERT and alert not in self.alerts:
            raise AlertConfigError(f"unknown alert {alert!r} (configured: {sorted(self.alerts)})")
        return self.store.requeue_failed(self.clock(), alert=alert, notification_id=notification_id)

    def _requeue_after_success(self, note: Notification, report: DeliveryReport) -> None:
        requeued = self.store.requeue_failed(self.clock(), alert=note.alert, channel_index=note.channel_index)
        if requeued:
            report.requeued += requeued
            report.lines.append(f"re-queued {requeued} failed {note.alert} via {note.channel}")

    def _record_given_up(self, note: Notification, error: str | None, report: DeliveryReport) -> None:
        """Store the `mm-notification-failed` event, unless the notification belongs to an alert
        that notifies on such events (which would loop)."""
        alert = self.alerts.get(note.alert)
        if alert is not None and alert.routes_notification_failures:
            return
        now = self.clock()
        event = notification_failed_event(note.alert, note.id, note.channel, error, now)
        report.failure_events += self.store.insert_events([event], created_at=now)

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
