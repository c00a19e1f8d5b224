"""Alerts from YAML: a list of alerts, or a mapping with an `alerts:` list; each notification names
its channel class by `kind`."""

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from mm_dagster.alerts.channels import EmailChannel, LogChannel, SlackChannel, WebhookChannel
from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import AlertConfig, Criteria, EntityFilter
from mm_dagster.core.errors import AlertConfigError, MonitoringError

CHANNEL_TYPES: Mapping[str, Callable[..., Channel]] = MappingProxyType(
    {
        WebhookChannel.kind: WebhookChannel,
        SlackChannel.kind: SlackChannel,
        EmailChannel.kind: EmailChannel,
        LogChannel.kind: LogChannel,
    }
)


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
    except (TypeError, AlertConfigError) as exc:
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
