"""Alert events raised by a window report (spec §6): one per detected/suspected result and one
per app failure, each on an entity `{endpoint_id}.{app}.result.{name}` or `{endpoint_id}.{app}.app`.
"""

from dataclasses import dataclass
from datetime import datetime

from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import EventKind, ResultStatusApp, event_kind_for

DETAIL_LIMIT = 4000


@dataclass(frozen=True)
class AlertEvent:
    kind: EventKind
    entity: str
    endpoint_id: str
    endpoint_name: str
    app: str
    result_name: str | None  # None for an app failure
    window_start: datetime
    window_end: datetime
    value: float | None
    status: ResultStatusApp | None
    detail: str | None  # the error of an app failure


@dataclass(frozen=True, kw_only=True)
class StoredAlertEvent(AlertEvent):
    """An event as stored: unique per (kind, entity, window_start)."""

    id: int
    created_at: datetime
    evaluated: bool


def result_entity(endpoint_id: str, app: str, result: str) -> str:
    return f"{endpoint_id}.{app}.result.{result}"


def app_entity(endpoint_id: str, app: str) -> str:
    return f"{endpoint_id}.{app}.app"


def events_of_report(report: AppWindowReport) -> list[AlertEvent]:
    """Events raised by a window report: detected/suspected results and app failures."""
    window = report.window
    events = []
    for endpoint_id, (results, _) in report.outputs.items():
        for r in results:
            kind = event_kind_for(r.kind, r.status)
            if kind is None:
                continue
            events.append(
                AlertEvent(
                    kind=kind,
                    entity=result_entity(endpoint_id, report.app, r.name),
                    endpoint_id=endpoint_id,
                    endpoint_name=report.endpoint_names.get(endpoint_id, endpoint_id),
                    app=report.app,
                    result_name=r.name,
                    window_start=window.start,
                    window_end=window.end,
                    value=r.value,
                    status=r.status,
                    detail=None,
                )
            )
    for endpoint_id, error in report.failures.items():
        events.append(
            AlertEvent(
                kind=EventKind.mm_app_failed,
                entity=app_entity(endpoint_id, report.app),
                endpoint_id=endpoint_id,
                endpoint_name=report.endpoint_names.get(endpoint_id, endpoint_id),
                app=report.app,
                result_name=None,
                window_start=window.start,
                window_end=window.end,
                value=None,
                status=None,
                detail=error[:DETAIL_LIMIT],
            )
        )
    return events


def notification_entity(alert: str, notification_id: int) -> str:
    return f"{alert}.notification.{notification_id}"


def notification_failed_event(
    alert: str, notification_id: int, channel: str, error: str | None, at: datetime
) -> AlertEvent:
    """The `mm-notification-failed` event of a notification given up on at `at`: its `app` is
    the alert the notification belonged to, its `endpoint_name` the channel label."""
    return AlertEvent(
        kind=EventKind.mm_notification_failed,
        entity=notification_entity(alert, notification_id),
        endpoint_id="",
        endpoint_name=channel,
        app=alert,
        result_name=None,
        window_start=at,
        window_end=at,
        value=None,
        status=None,
        detail=(error or "")[:DETAIL_LIMIT],
    )


def clean_entities_of_report(report: AppWindowReport) -> list[tuple[str, datetime]]:
    """(entity, window end) of every entity whose window came back clean (for auto-reset): each
    analysed endpoint's app entity, and its results with no detection."""
    clean = []
    for endpoint_id, (results, _) in report.outputs.items():
        clean.append((app_entity(endpoint_id, report.app), report.window.end))
        clean += [
            (result_entity(endpoint_id, report.app, r.name), report.window.end)
            for r in results
            if r.status <= ResultStatusApp.no_detection
        ]
    return clean
