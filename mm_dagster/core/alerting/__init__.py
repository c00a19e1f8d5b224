"""Alert values and pure rules (spec §6): configuration, entity states and their rules, events
raised by a window report, message composition and the outbox's values. No I/O: the concrete
channels live in `mm_dagster.alerts`, the SQL in `mm_dagster.storage.alert_store`."""

from mm_dagster.core.alerting.channel import Channel, Message
from mm_dagster.core.alerting.config import AlertConfig

__all__ = ["AlertConfig", "Channel", "Message"]
