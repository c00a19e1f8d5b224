"""Alert configuration: declared in Python or loaded from YAML, validated with clear errors.

Secrets (webhook signing keys, Slack webhook URLs, SMTP passwords) are named by environment
variable (or a Dagster `EnvVar`) and read only when a notification is sent.
"""

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.names import APP_NAME, check_name
from mm_dagster.core.schemas import EventKind

PLACEHOLDERS = ("project", "name", "entity")
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class AlertConfigError(MonitoringError):
    """An alert configuration is invalid."""


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class ResetPolicy(StrEnum):
    auto = "auto"
    manual = "manual"


def parse_duration(value: object, where: str) -> timedelta:
    """`timedelta`, seconds as a number, or text like `10m`, `1h`, `30s`, `2d`."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration = timedelta(seconds=value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        duration = timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    else:
        raise AlertConfigError(f"{where}: period {value!r} does not parse (use e.g. '10m', '1h', '30s')")
    if duration < timedelta(0):
        raise AlertConfigError(f"{where}: period {value!r} is negative")
    return duration


def env_name(value: object, where: str) -> str:
    """The environment variable a secret is read from (a name, or a Dagster EnvVar)."""
    name = getattr(value, "env_var_name", None) or value
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise AlertConfigError(f"{where}: {value!r} is not an environment variable name")
    return name


def read_secret(name: str, where: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise AlertConfigError(f"{where}: secret environment variable {name} is not set")
    return value


def _http_url(url: object, where: str) -> str:
    parsed = urlparse(url if isinstance(url, str) else "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AlertConfigError(f"{where}: URL {url!r} is not an http(s) URL")
    return url  # type: ignore[return-value]


@dataclass(frozen=True)
class WebhookChannel:
    """JSON POST; with `secret_env`, an `X-MM-Signature: sha256=<hex HMAC of the body>` header."""

    url: str
    secret_env: str | None = None
    timeout_seconds: float = 5.0
    headers: Mapping[str, str] = field(default_factory=dict)
    kind = "webhook"

    def __post_init__(self) -> None:
        _http_url(self.url, "webhook channel")
        if self.secret_env is not None:
            object.__setattr__(self, "secret_env", env_name(self.secret_env, "webhook secret_env"))
        if self.timeout_seconds <= 0:
            raise AlertConfigError(
                f"webhook channel: timeout_seconds must be > 0, got {self.timeout_seconds}"
            )

    def check_secrets(self) -> None:
        if self.secret_env:
            read_secret(self.secret_env, f"webhook {self.url}")

    @property
    def label(self) -> str:
        return f"webhook:{self.url}"


@dataclass(frozen=True)
class SlackChannel:
    """A Slack incoming webhook; its URL is a secret, read from `url_env`."""

    url_env: str
    timeout_seconds: float = 5.0
    kind = "slack"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url_env", env_name(self.url_env, "slack url_env"))

    def check_secrets(self) -> None:
        _http_url(read_secret(self.url_env, "slack channel"), f"slack channel (${self.url_env})")

    @property
    def label(self) -> str:
        return f"slack:${self.url_env}"


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
    kind = "email"

    def __post_init__(self) -> None:
        if not self.host:
            raise AlertConfigError("email channel: host is empty")
        if isinstance(self.to, str):
            object.__setattr__(self, "to", (self.to,))
        if not self.to or not all("@" in a for a in self.to) or "@" not in self.sender:
            raise AlertConfigError(f"email channel: bad addresses to={self.to!r} sender={self.sender!r}")
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


@dataclass(frozen=True)
class LogChannel:
    """Python logging (logger `mm_dagster.alerts`)."""

    level: str = "WARNING"
    kind = "log"

    def check_secrets(self) -> None:
        return None

    @property
    def label(self) -> str:
        return "log"


Channel = WebhookChannel | SlackChannel | EmailChannel | LogChannel
CHANNEL_TYPES: dict[str, type] = {
    "webhook": WebhookChannel,
    "slack": SlackChannel,
    "email": EmailChannel,
    "log": LogChannel,
}


@dataclass(frozen=True)
class EntityFilter:
    """Which entities an alert watches: endpoint ids or names (or `*`), app, result name."""

    endpoints: Sequence[str] = ("*",)
    app: str = "*"
    result: str = "*"

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str):
            object.__setattr__(self, "endpoints", (self.endpoints,))
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        if self.app != "*":
            check_name(APP_NAME, self.app, "alert entities app")

    def matches(self, endpoint_id: str, endpoint_name: str, app: str, result: str | None) -> bool:
        return (
            ("*" in self.endpoints or endpoint_id in self.endpoints or endpoint_name in self.endpoints)
            and self.app in ("*", app)
            and (self.result == "*" or result is None or self.result == result)
        )


@dataclass(frozen=True)
class Criteria:
    count: int = 1
    period: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise AlertConfigError(f"criteria count must be an int >= 1, got {self.count!r}")
        object.__setattr__(self, "period", parse_duration(self.period, "criteria"))


def render(template: str, **values: str) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass(frozen=True)
class AlertConfig:
    name: str
    trigger: Sequence[EventKind | str]
    notifications: Sequence[Channel]
    summary: str = "{{project}}: {{name}} on {{entity}}"
    severity: Severity | str = Severity.medium
    entities: EntityFilter = field(default_factory=EntityFilter)
    criteria: Criteria = field(default_factory=Criteria)
    reset_policy: ResetPolicy | str = ResetPolicy.auto
    cooldown: timedelta | str | float = timedelta(hours=1)

    def __post_init__(self) -> None:
        check_name(APP_NAME, self.name, "alert name")
        where = f"alert {self.name!r}"
        triggers = [self.trigger] if isinstance(self.trigger, str) else list(self.trigger)
        kinds = []
        for t in triggers:
            try:
                kinds.append(EventKind(t))
            except ValueError:
                raise AlertConfigError(
                    f"{where}: unknown event kind {t!r} (one of {[k.value for k in EventKind]})"
                ) from None
        if not kinds:
            raise AlertConfigError(f"{where}: trigger lists no event kind")
        object.__setattr__(self, "trigger", tuple(kinds))
        for placeholder in _PLACEHOLDER.findall(self.summary):
            if placeholder not in PLACEHOLDERS:
                raise AlertConfigError(
                    f"{where}: summary has unknown placeholder {{{{{placeholder}}}}} "
                    f"(allowed: {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)})"
                )
        try:
            object.__setattr__(self, "severity", Severity(self.severity))
        except ValueError:
            raise AlertConfigError(f"{where}: severity {self.severity!r} is not low/medium/high") from None
        try:
            object.__setattr__(self, "reset_policy", ResetPolicy(self.reset_policy))
        except ValueError:
            raise AlertConfigError(
                f"{where}: reset_policy {self.reset_policy!r} is not auto/manual"
            ) from None
        object.__setattr__(self, "cooldown", parse_duration(self.cooldown, where))
        if not self.notifications:
            raise AlertConfigError(f"{where}: no notifications configured")
        for channel in self.notifications:
            if not isinstance(channel, WebhookChannel | SlackChannel | EmailChannel | LogChannel):
                raise AlertConfigError(f"{where}: unknown channel {channel!r}")
            channel.check_secrets()


def _channel_from_dict(raw: Any, where: str) -> Channel:
    if not isinstance(raw, Mapping) or "kind" not in raw:
        raise AlertConfigError(f"{where}: each notification needs a 'kind' ({', '.join(CHANNEL_TYPES)})")
    kind = raw["kind"]
    cls = CHANNEL_TYPES.get(kind)
    if cls is None:
        raise AlertConfigError(f"{where}: unknown channel kind {kind!r} (one of {', '.join(CHANNEL_TYPES)})")
    args = {k: v for k, v in raw.items() if k != "kind"}
    try:
        return cls(**args)
    except TypeError as exc:
        raise AlertConfigError(f"{where}: channel {kind!r}: {exc}") from exc


def alert_from_dict(raw: Any, where: str) -> AlertConfig:
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{where}: an alert must be a mapping, got {type(raw).__name__}")
    args = dict(raw)
    here = f"{where} (alert {args.get('name', '?')!r})"
    try:
        args["notifications"] = [_channel_from_dict(c, here) for c in args.get("notifications") or []]
        if "entities" in args:
            args["entities"] = EntityFilter(**args["entities"])
        if "criteria" in args:
            args["criteria"] = Criteria(**args["criteria"])
        return AlertConfig(**args)
    except AlertConfigError:
        raise
    except (TypeError, MonitoringError) as exc:
        raise AlertConfigError(f"{here}: {exc}") from exc


def load_alerts_yaml(path: str | Path) -> list[AlertConfig]:
    """Alerts from a YAML file: a list, or a mapping with an `alerts:` list."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AlertConfigError(f"{path}: malformed YAML: {exc}") from exc
    if isinstance(data, Mapping):
        data = data.get("alerts")
    if not isinstance(data, list):
        raise AlertConfigError(f"{path}: expected a list of alerts (or 'alerts:' with a list)")
    alerts = [alert_from_dict(raw, f"{path}: alerts[{i}]") for i, raw in enumerate(data)]
    names = [a.name for a in alerts]
    if len(set(names)) != len(names):
        raise AlertConfigError(f"{path}: duplicate alert names {names}")
    return alerts
