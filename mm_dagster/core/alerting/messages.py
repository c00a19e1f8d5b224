"""Message composition: one grouped message per alert and evaluation, one per failed check."""

from collections.abc import Mapping, Sequence
from typing import Any

from mm_dagster.core.alerting.channel import Message
from mm_dagster.core.alerting.config import CHECKS_ALERT, AlertConfig, render
from mm_dagster.core.alerting.events import AlertEvent

GROUP_LIMIT = 50  # events listed in detail per message
ENTITY_LIMIT = 1000  # entities listed in a payload


def _event_line(e: AlertEvent) -> str:
    return (
        f"- {e.kind} {e.endpoint_name} / {e.app}"
        + (f" / {e.result_name}" if e.result_name else "")
        + (f" [{e.segment_label}]" if e.segment else "")
        + f" window {e.window_start:%Y-%m-%d %H:%M}"
        + (f" value {e.value:.4f}" if e.value is not None else "")
        + (f": {e.detail[:300]}" if e.detail else "")
    )


def _event_payload(e: AlertEvent) -> dict[str, Any]:
    return {
        "kind": e.kind.value,
        "entity": e.entity,
        "endpoint_id": e.endpoint_id,
        "endpoint_name": e.endpoint_name,
        "app": e.app,
        "result": e.result_name,
        "window_start": e.window_start.isoformat(),
        "value": e.value,
        "status": None if e.status is None else int(e.status),
    } | ({"segment": e.segment_label} if e.segment else {})


def alert_message(
    alert: AlertConfig, events: Sequence[AlertEvent], project: str, group_limit: int = GROUP_LIMIT
) -> Message:
    """One message for every event `alert` fired on in an evaluation (at least one): the subject
    names the first entity and how many more, the text lists the first `group_limit` events."""
    entities = sorted({e.entity for e in events})
    first = min(events, key=lambda e: e.entity)
    readable = f"{first.endpoint_name}/{first.app}/{first.result_name or 'app'}" + (
        f" [{first.segment_label}]" if first.segment else ""
    )
    entity_text = readable + (f" and {len(entities) - 1} more" if len(entities) > 1 else "")

    subject = f"[{alert.severity}] " + render(
        alert.summary, project=project, name=alert.name, entity=entity_text
    )
    shown = events[:group_limit]
    lines = [_event_line(e) for e in shown]
    if len(events) > len(shown):
        lines.append(f"… and {len(events) - len(shown)} more events")
    text = "\n".join(lines)
    payload = {
        "alert": alert.name,
        "project": project,
        "severity": str(alert.severity),
        "summary": subject,
        "entities": entities[:ENTITY_LIMIT],
        "entity_count": len(entities),
        "event_count": len(events),
        "truncated": len(events) > len(shown),
        "text": text,
        "events": [_event_payload(e) for e in shown],
    }
    return Message(subject, text, payload)


def check_failure_message(
    check: str, partition: str | None, severity: str, metadata: Mapping[str, Any], project: str
) -> Message:
    """The message for a failed asset check on one window (partition)."""
    subject = f"[{severity}] {project}: check {check} failed for window {partition}"
    text = "\n".join(f"- {k}: {v}" for k, v in metadata.items())
    payload = {
        "alert": CHECKS_ALERT,
        "project": project,
        "check": check,
        "window": partition,
        "severity": severity,
        "summary": subject,
        "text": text,
        "metadata": {k: str(v) for k, v in metadata.items()},
    }
    return Message(subject, text, payload)
