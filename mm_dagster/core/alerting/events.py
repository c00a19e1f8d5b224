"""Alert events raised by a window report (spec §6): one per detected/suspected result and one
per app failure, each on an entity `{endpoint_id}.{app}.result.{name}` or `{endpoint_id}.{app}.app`;
a segment's entity ends with the segment: `{endpoint_id}.{app}.result.{name}[country=DE]`.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import EventKind, ResultStatusApp, event_kind_for
from mm_dagster.core.segments import ENDPOINT_WIDE, segment_label

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
    segment: str = ENDPOINT_WIDE  # the segment key (see core.segments); "" endpoint-wide

    @property
    def segment_label(self) -> str:
        """`country=DE`, or "" for an endpoint-wide event."""
        return segment_label(self.segment)


@dataclass(frozen=True, kw_only=True)
class StoredAlertEvent(AlertEvent):
    """An event as stored: unique per (kind, entity, window_start)."""

    id: int
    created_at: datetime
    evaluated: bool


ENTITY_CHARS = 400  # the entity column's width


def _with_segment(entity: str, segment: str) -> str:
    if not segment:
        return entity
    named = f"{entity}[{segment_label(segment)}]"
    if len(named) <= ENTITY_CHARS:
        return named
    digest = hashlib.sha256(segment.encode()).hexdigest()[:16]
    return f"{named[: ENTITY_CHARS - 17]}#{digest}"


def result_entity(endpoint_id: str, app: str, result: str, segment: str = ENDPOINT_WIDE) -> str:
    return _with_segment(f"{endpoint_id}.{app}.result.{result}", segment)


def app_entity(endpoint_id: str, app: str, segment: str = ENDPOINT_WIDE) -> str:
    return _with_segment(f"{endpoint_id}.{app}.app", segment)


def events_of_report(report: AppWindowReport) -> list[AlertEvent]:
    """Events raised by a window report: detected/suspected results and app failures, of the
    endpoints as a whole and of their segments."""
    window = report.window
    events = []
    for endpoint_id, segment, (results, _) in report.keyed_outputs():
        for r in results:
            kind = event_kind_for(r.kind, r.status)
            if kind is None:
                continue
            events.append(
                AlertEvent(
                    kind=kind,
                    entity=result_entity(endpoint_id, report.app, r.name, segment),
                    endpoint_id=endpoint_id,
                    endpoint_name=report.endpoint_names.get(endpoint_id, endpoint_id),
                    app=report.app,
                    result_name=r.name,
                    window_start=window.start,
                    window_end=window.end,
                    value=r.value,
                    status=r.status,
                    detail=None,
                    segment=segment,
                )
            )
    for endpoint_id, segment, error in report.keyed_failures():
        events.append(
            AlertEvent(
                kind=EventKind.mm_app_failed,
                entity=app_entity(endpoint_id, report.app, segment),
                endpoint_id=endpoint_id,
                endpoint_name=report.endpoint_names.get(endpoint_id, endpoint_id),
                app=report.app,
                result_name=None,
                window_start=window.start,
                window_end=window.end,
                value=None,
                status=None,
                detail=error[:DETAIL_LIMIT],
                segment=segment,
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
    for endpoint_id, segment, (results, _) in report.keyed_outputs():
        clean.append((app_entity(endpoint_id, report.app, segment), report.window.end))
        clean += [
            (result_entity(endpoint_id, report.app, r.name, segment), report.window.end)
            for r in results
            if r.status <= ResultStatusApp.no_detection
        ]
    return clean
