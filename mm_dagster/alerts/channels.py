"""Notification channels: each sends one message or raises DeliveryError (no secret in it)."""

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from mm_dagster.alerts.config import (
    Channel,
    EmailChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    read_secret,
)

log = logging.getLogger("mm_dagster.alerts")
SIGNATURE_HEADER = "X-MM-Signature"


class DeliveryError(RuntimeError):
    """A notification could not be delivered (retried later)."""


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict[str, Any]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post_json(url: str, body: bytes, headers: dict[str, str], timeout: float, secrets: list[str]) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                raise DeliveryError(f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(_redact(f"{type(exc).__name__}: {reason}", secrets)) from None


def send_webhook(channel: WebhookChannel, message: Message) -> None:
    body = json.dumps(message.payload, sort_keys=True).encode()
    headers = dict(channel.headers)
    secrets: list[str] = []
    if channel.secret_env:
        secret = read_secret(channel.secret_env, f"webhook {channel.url}")
        secrets.append(secret)
        headers[SIGNATURE_HEADER] = signature(secret, body)
    _post_json(channel.url, body, headers, channel.timeout_seconds, secrets)


def slack_body(message: Message) -> dict[str, Any]:
    return {
        "text": message.subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:2900]}},
        ],
    }


def send_slack(channel: SlackChannel, message: Message) -> None:
    url = read_secret(channel.url_env, "slack channel")
    body = json.dumps(slack_body(message)).encode()
    _post_json(url, body, {}, channel.timeout_seconds, [url])


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


def send_email(channel: EmailChannel, message: Message) -> None:
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = channel.sender
    email["To"] = ", ".join(channel.to)
    email.set_content(message.text)
    secrets: list[str] = []
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=channel.ca_file))
            if channel.username_env and channel.password_env:
                user = read_secret(channel.username_env, "email channel")
                password = read_secret(channel.password_env, "email channel")
                secrets += [user, password]
                _login(smtp, user, password)
            smtp.send_message(email)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP authentication rejected ({exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryError(_redact(f"SMTP {type(exc).__name__}: {exc}", secrets)) from None


def send_log(channel: LogChannel, message: Message) -> None:
    log.log(logging.getLevelName(channel.level), "%s\n%s", message.subject, message.text)


def send(channel: Channel, message: Message) -> None:
    if isinstance(channel, WebhookChannel):
        send_webhook(channel, message)
    elif isinstance(channel, SlackChannel):
        send_slack(channel, message)
    elif isinstance(channel, EmailChannel):
        send_email(channel, message)
    else:
        send_log(channel, message)
