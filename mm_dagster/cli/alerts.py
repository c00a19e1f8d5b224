"""`mm alerts ...`: list, events, notifications, reset, deliver, resend. Printed rows have URLs
without userinfo or query string (rows stored before delivery redacted them may hold
credentials)."""

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mm_dagster.alerts.secrets import redact_urls
from mm_dagster.cli.config import alert_service
from mm_dagster.cli.errors import UsageError
from mm_dagster.cli.output import Column, json_line, table_lines
from mm_dagster.core.alerting.config import CHECKS_ALERT

if TYPE_CHECKING:
    from mm_dagster.alerts.service import AlertService

LIST_COLUMNS = (
    Column("name", "alert"),
    Column("state", "state"),
    Column("severity", "severity"),
    Column("reset_policy", "reset"),
    Column("last_notified_at", "last notified (UTC)"),
    Column("failed_notifications", "failed"),
    Column("active", "active entities"),
)
EVENT_COLUMNS = (
    Column("window_start", "window (UTC)"),
    Column("kind", "event"),
    Column("endpoint_name", "endpoint"),
    Column("app", "app"),
    Column("result_name", "result"),
    Column("segment_label", "segment"),
    Column("status", "status"),
    Column("value", "value"),
)
NOTIFICATION_COLUMNS = (
    Column("id", "id"),
    Column("alert", "alert"),
    Column("channel", "channel"),
    Column("status", "status"),
    Column("attempts", "attempts"),
    Column("created_at", "created (UTC)"),
    Column("sent_at", "sent (UTC)"),
    Column("subject", "subject"),
    Column("last_error", "last error"),
)
ATTEMPT_COLUMNS = (
    Column("notification_id", "notification"),
    Column("attempted_at", "attempted (UTC)"),
    Column("ok", "ok"),
    Column("duration_ms", "ms"),
    Column("error", "error"),
)


def print_redacted(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], as_json: bool, what: str
) -> None:
    if as_json:
        lines = [json_line(row) for row in rows]
    else:
        lines = table_lines(rows, columns) if rows else [f"no {what}"]
    for line in lines:
        print(redact_urls(line))


def _entity_with_name(entity: str, names: Mapping[str, str]) -> str:
    """`<endpoint id>.app.result.x` as `<endpoint name>.app.result.x`."""
    endpoint_id, dot, rest = entity.partition(".")
    return f"{names[endpoint_id]}{dot}{rest}" if endpoint_id in names else entity


def _entity_with_id(entity: str, ids: Mapping[str, str]) -> str:
    """An entity as `mm alerts list` shows it (endpoint name first) as stored (endpoint id)."""
    for name, endpoint_id in sorted(ids.items(), key=lambda item: -len(item[0])):
        if entity.startswith(f"{name}."):
            return f"{endpoint_id}{entity[len(name) :]}"
    return entity


def _known(alerts: "AlertService", name: str | None) -> None:
    configured = alerts.inspection.alerts
    if name is not None and name not in configured:
        raise UsageError(f"unknown alert {name!r} (configured: {', '.join(sorted(configured)) or 'none'})")


def run_alerts(args: argparse.Namespace, home: str) -> int:
    from mm_dagster.monitoring import Monitoring

    with Monitoring(home=home) as mm:
        return _run(args, alert_service(args.config, args.alerts_yaml, mm), mm.endpoints.names())


def _run(args: argparse.Namespace, alerts: "AlertService", names: Mapping[str, str]) -> int:
    if args.action == "list":
        rows = []
        for summary in alerts.inspection.list_alerts():
            row = asdict(summary)
            row["active"] = [_entity_with_name(e, names) for e in summary.active_entities]
            rows.append(row)
        print_redacted(rows, LIST_COLUMNS, args.json, "alerts configured")
    elif args.action == "events":
        _known(alerts, args.name)
        events = [
            {**asdict(e), "segment_label": e.segment_label} for e in alerts.inspection.events(args.name)
        ]
        print_redacted(events, EVENT_COLUMNS, args.json, "alert events")
    elif args.action == "notifications":
        if args.name != CHECKS_ALERT:
            _known(alerts, args.name)
        _notifications(alerts, args.name, args.attempts, args.json)
    elif args.action == "reset":
        entity = _entity_with_id(args.entity, {n: i for i, n in names.items()}) if args.entity else None
        print(f"reset {alerts.inspection.reset(args.name, entity)} active entity state(s) of {args.name}")
    elif args.action == "deliver":
        report = alerts.deliver_due()
        for line in report.lines:
            print(line)  # errors and labels are stored redacted
        print(f"sent {report.sent}, retrying {report.retrying}, gave up {report.failed}")
    elif args.action == "resend":
        print(f"re-queued {alerts.resend(args.name, args.id)} failed notification(s)")
    return 0


def _notifications(alerts: "AlertService", name: str | None, with_attempts: bool, as_json: bool) -> None:
    notes = alerts.store.notifications(name)
    attempts = {note.id: alerts.store.attempts(note.id) for note in notes} if with_attempts else {}
    rows = []
    for note in notes:
        row = asdict(note)
        if with_attempts:
            row["attempts_detail"] = [asdict(a) for a in attempts[note.id]]
        rows.append(row)
    print_redacted(rows, NOTIFICATION_COLUMNS, as_json, "notifications")
    if with_attempts and not as_json:
        print()
        attempt_rows = [asdict(a) for note in notes for a in attempts[note.id]]
        print_redacted(attempt_rows, ATTEMPT_COLUMNS, False, "delivery attempts")
