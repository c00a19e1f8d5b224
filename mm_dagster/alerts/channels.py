"""The notification channels. Each is validated when built and sends one message itself, or
raises `DeliveryError` with no secret in it."""

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar

from mm_dagster.alerts.http import http_url, post_json
from mm_dagster.alerts.secrets import env_name, read_secret, redact, redact_url
from mm_dagster.core.alerting.channel import Message
from mm_dagster.core.alerting.header_text import http_header, single_line
from mm_dagster.core.errors import AlertConfigError, DeliveryError

log = logging.getLogger("mm_dagster.alerts")
SIGNATURE_HEADER = "X-MM-Signature"
NOTIFICATION_ID_HEADER = "X-MM-Notification-Id"
MESSAGE_ID_DOMAIN = "mm-dagster.notifications"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookChannel:
    """JSON POST to `url`, or to the URL in the environment variable `url_env` (read at send
    time: for URLs with a token in them); with `secret_env`, an `X-MM-Signature: sha256=<hex HMAC
    of the body>` header. Every POST carries `X-MM-Notification-Id` and the body's
    `notification_id`, stable across retries."""

    url: str | None = None
    secret_env: str | None = None
    timeout_seconds: float = 5.0
    headers: Mapping[str, str] = field(default_factory=dict)
    url_env: str | None = None
    kind: ClassVar[str] = "webhook"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.url_env is None):
            raise AlertConfigError("webhook channel: give exactly one of url and url_env")
        if self.url is not None:
            http_url(self.url, "webhook channel")
        else:
            object.__setattr__(self, "url_env", env_name(self.url_env, "webhook url_env"))
        if self.secret_env is not None:
            object.__setattr__(self, "secret_env", env_name(self.secret_env, "webhook secret_env"))
        if self.timeout_seconds <= 0:
            raise AlertConfigError(
                f"webhook channel: timeout_seconds must be > 0, got {self.timeout_seconds}"
            )
        if not isinstance(self.headers, Mapping):
            raise AlertConfigError(f"{self.label}: headers must be a mapping of name to value")
        object.__setattr__(
            self, "headers", dict(http_header(k, v, self.label) for k, v in self.headers.items())
        )

    def _url(self) -> str:
        if self.url is not None:
            return self.url
        assert self.url_env is not None  # one of them is set (__post_init__)
        return http_url(read_secret(self.url_env, "webhook channel"), f"webhook channel (${self.url_env})")

    def check_secrets(self) -> None:
        if self.url_env:
            self._url()
        if self.secret_env:
            read_secret(self.secret_env, self.label)

    @property
    def label(self) -> str:
        return f"webhook:{redact_url(self.url)}" if self.url is not None else f"webhook:${self.url_env}"

    def send(self, message: Message) -> None:
        url = self._url()
        body = json.dumps(message.payload_with_id(), sort_keys=True).encode()
        headers = dict(self.headers)
        if message.notification_id is not None:
            headers[NOTIFICATION_ID_HEADER] = message.notification_id
        secrets = [url] if self.url_env else []
        if self.secret_env:
            secret = read_secret(self.secret_env, self.label)
            secrets.append(secret)
            headers[SIGNATURE_HEADER] = signature(secret, body)
        post_json(url, body, headers, self.timeout_seconds, secrets)


def slack_body(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": message.subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:2900]}},
        ],
    }
    if message.notification_id is not None:
        body["notification_id"] = message.notification_id
    return body


@dataclass(frozen=True)
class SlackChannel:
    """A Slack incoming webhook; its URL is a secret, read from `url_env`."""

    url_env: str
    timeout_seconds: float = 5.0
    kind: ClassVar[str] = "slack"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url_env", env_name(self.url_env, "slack url_env"))

    def check_secrets(self) -> None:
        http_url(read_secret(self.url_env, "slack channel"), f"slack channel (${self.url_env})")

    @property
    def label(self) -> str:
        return f"slack:${self.url_env}"

    def send(self, message: Message) -> None:
        url = read_secret(self.url_env, "slack channel")
        body = json.dumps(slack_body(message)).encode()
        post_json(url, body, {}, self.timeout_seconds, [url])


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """One AUTH attempt with PLAIN or LOGIN (smtplib's `login` would retry every mechanism)."""
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        smtp.login(user, password)
        return
    smtp.user, smtp.password = user, password
    smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))


@dataclass(frozen=True)
class EmailChannel:
    """Email over SMTP; STARTTLS optional; credentials from `username_env`/`password_env`."""

    host: str
    to: Sequence[str]
    sender: str
    port: int = 25
    starttls: bool = False
    username_env: str | None = None
    password_env: str | None = None
    timeout_seconds: float = 10.0
    ca_file: str | None = None  # a private CA for STARTTLS; the system's CAs otherwise
    kind: ClassVar[str] = "email"

    def __post_init__(self) -> None:
        if not self.host:
            raise AlertConfigError("email channel: host is empty")
        if isinstance(self.to, str):
            object.__setattr__(self, "to", (self.to,))
        if not self.to or not all("@" in a for a in self.to) or "@" not in self.sender:
            raise AlertConfigError(f"email channel: bad addresses to={self.to!r} sender={self.sender!r}")
        for address in self.to:
            single_line(address, "email channel: to address")
        single_line(self.sender, "email channel: sender")
        single_line(self.host, "email channel: host")
        for attr in ("username_env", "password_env"):
            if getattr(self, attr) is not None:
                object.__setattr__(self, attr, env_name(getattr(self, attr), f"email {attr}"))
        if (self.username_env is None) != (self.password_env is None):
            raise AlertConfigError("email channel: give both username_env and password_env, or neither")

    def check_secrets(self) -> None:
        for name in (self.username_env, self.password_env):
            if name:
                read_secret(name, f"email channel {self.host}")

    @property
    def label(self) -> str:
        return f"email:{','.join(self.to)}"

    def _email(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = self.sender
        email["To"] = ", ".join(self.to)
        if message.notification_id is not None:
            email["Message-ID"] = message_id(message.notification_id)
        email.set_content(message.text)
        return email

    def send(self, message: Message) -> None:
        secrets: list[str] = []
        try:
            email = self._email(message)
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.username_env and self.password_env:
                    user = read_secret(self.username_env, "email channel")
                    password = read_secret(self.password_env, "email channel")
                    secrets += [user, password]
                    _login(smtp, user, password)
                smtp.send_message(email)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP authentication rejected ({exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(redact(f"SMTP {type(exc).__name__}: {exc}", secrets)) from None
        except Exception as exc:  # e.g. a header the email code refuses
            raise DeliveryError(redact(f"email {type(exc).__name__}: {exc}", secrets)) from None


def message_id(notification_id: str) -> str:
    """The Message-ID of every email of one notification: the same on every retry."""
    return f"<{notification_id}@{MESSAGE_ID_DOMAIN}>"


@dataclass(frozen=True)
class LogChannel:
    """Python logging (logger `mm_dagster.alerts`)."""

    level: str = "WARNING"
    kind: ClassVar[str] = "log"

    def check_secrets(self) -> None:
        return None

    @property
    def label(self) -> str:
        return "log"

    @property
    def timeout_seconds(self) -> float:
        return 10.0

    def send(self, message: Message) -> None:
        log.log(logging.getLevelName(self.level), "%s\n%s", message.subject, message.text)
