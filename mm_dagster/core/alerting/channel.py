"""What a notification channel is to the alert model: a message it sends, and the protocol every
concrete channel (`mm_dagster.alerts.channels`) follows."""

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict[str, Any]
    notification_id: str | None = None  # stable across retries: receivers de-duplicate on it

    def payload_with_id(self) -> dict[str, Any]:
        """The payload, with `notification_id` when the message has one."""
        if self.notification_id is None:
            return self.payload
        return {**self.payload, "notification_id": self.notification_id}


@runtime_checkable
class Channel(Protocol):
    """Sends one message or raises `DeliveryError` (with no secret in it)."""

    @property
    def label(self) -> str:
        """Names the channel in the outbox and logs, without secrets."""
        ...

    @property
    def timeout_seconds(self) -> float: ...

    def send(self, message: Message) -> None: ...

    def check_secrets(self) -> None:
        """Raise `AlertConfigError` if a secret the channel needs is not set."""
        ...
