"""Alert configuration values, validated with clear errors (declared in Python or loaded from
YAML by `mm_dagster.alerts.yaml_loader`)."""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.events import AlertEvent
from mm_dagster.core.alerting.header_text import single_line
from mm_dagster.core.errors import AlertConfigError
from mm_dagster.core.names import APP_NAME, check_name
from mm_dagster.core.schemas import EventKind

PLACEHOLDERS = ("project", "name", "entity")
CHECKS_ALERT = "dagster-checks"  # the outbox's alert name for failed asset checks
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = MappingProxyType({"s": "seconds", "m": "minutes", "h": "hours", "d": "days"})


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


def render(template: str, **values: str) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


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
        count: object = self.count  # YAML may give anything
        if not isinstance(count, int) or count < 1:
            raise AlertConfigError(f"criteria count must be an int >= 1, got {count!r}")
        object.__setattr__(self, "period", parse_duration(self.period, "criteria"))


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
        if not isinstance(self.summary, str):
            raise AlertConfigError(f"{where}: summary must be text, got {type(self.summary).__name__}")
        single_line(self.summary, f"{where}: summary")
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
            if not isinstance(channel, Channel):
                raise AlertConfigError(f"{where}: unknown channel {channel!r}")
            channel.check_secrets()

    @property
    def routes_notification_failures(self) -> bool:
        """Whether this alert notifies on `mm-notification-failed` (its own failures then raise
        no such event, so a failing channel cannot notify about itself forever)."""
        return EventKind.mm_notification_failed in self.trigger

    def watches(self, event: AlertEvent) -> bool:
        """Whether `event` is one of this alert's trigger kinds, on an entity it watches."""
        return event.kind in self.trigger and self.entities.matches(
            event.endpoint_id, event.endpoint_name, event.app, event.result_name
        )


def alerts_by_name(alerts: Iterable[AlertConfig]) -> dict[str, AlertConfig]:
    """The alerts keyed by name; names must be unique and not the reserved `CHECKS_ALERT`."""
    listed = list(alerts)
    names = [a.name for a in listed]
    if len(set(names)) != len(names) or CHECKS_ALERT in names:
        raise AlertConfigError(f"alert names must be unique and not {CHECKS_ALERT!r}: {names}")
    return {a.name: a for a in listed}
