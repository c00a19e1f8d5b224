"""The notification outbox's values: what is queued, what is stored, what an attempt did, and the
dedup keys that make queueing idempotent."""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mm_dagster.core.alerting.channel import Channel, Message
from mm_dagster.core.alerting.config import CHECKS_ALERT, AlertConfig
from mm_dagster.core.alerting.events import AlertEvent


class NotificationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


@dataclass(frozen=True)
class OutboxEntry:
    """A notification to queue: one message for one channel (by its index) of one alert."""

    alert: str
    channel_index: int
    channel: str  # the channel's label
    dedup_key: str
    message: Message


@dataclass(frozen=True)
class Notification:
    """A queued notification and where its delivery stands."""

    id: int
    alert: str
    channel_index: int
    channel: str
    dedup_key: str
    subject: str
    payload: dict[str, Any]
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    uid: str | None = None  # a stable id for receivers (rows queued before it existed have none)

    @property
    def notification_id(self) -> str:
        """What receivers de-duplicate on: the stored uuid, else the outbox row id."""
        return self.uid or str(self.id)

    def message(self) -> Message:
        return Message(self.subject, self.payload.get("text", ""), self.payload, self.notification_id)


@dataclass(frozen=True)
class NotificationAttempt:
    id: int
    notification_id: int
    attempted_at: datetime
    ok: bool
    error: str | None
    duration_ms: float


@dataclass(frozen=True)
class AttemptOutcome:
    """One delivery attempt and where it leaves the notification: sent, failed for good, or
    pending again from `next_attempt_at`."""

    attempted_at: datetime
    attempts: int  # including this one
    error: str | None
    duration_ms: float
    status: NotificationStatus
    next_attempt_at: datetime | None = None


def alert_dedup_key(alert: str, channel_index: int, events: Iterable[AlertEvent]) -> str:
    """Unique per alert, channel and set of events (each by its stored identity: kind, entity and
    window), so an evaluation never queues twice, and the key does not depend on the order
    concurrent writers stored the events in."""
    identities = sorted(f"{e.kind}|{e.entity}|{e.window_start.isoformat()}" for e in events)
    digest = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:32]
    return f"{alert}|{channel_index}|{digest}"


def check_dedup_key(channel_index: int, check: str, partition: str | None) -> str:
    """Unique per channel, check and window: a failed check notifies once per window."""
    return f"check|{channel_index}|{check}|{partition}"


def alert_entries(alert: AlertConfig, events: Sequence[AlertEvent], message: Message) -> list[OutboxEntry]:
    """One entry per channel of `alert` for the events it fired on in one evaluation."""
    return [
        OutboxEntry(alert.name, i, channel.label, alert_dedup_key(alert.name, i, events), message)
        for i, channel in enumerate(alert.notifications)
    ]


def check_failure_entries(
    channels: Sequence[Channel], check: str, partition: str | None, message: Message
) -> list[OutboxEntry]:
    """One entry per check channel for a failed check on one window."""
    return [
        OutboxEntry(CHECKS_ALERT, i, channel.label, check_dedup_key(i, check, partition), message)
        for i, channel in enumerate(channels)
    ]
