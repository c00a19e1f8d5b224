"""Alert events, rule evaluation, the notification outbox and its delivery.

1. `record_report` stores one event per detected/suspected result and per app failure; the
   unique key (kind, entity, window_start) makes re-runs and backfills add nothing new.
2. `evaluate` claims every not-yet-evaluated event in one statement and, in the same
   transaction, updates alert states and writes the notifications to the outbox. A crash before
   the commit leaves the events unevaluated; nothing is lost or notified twice.
3. `deliver_due` sends due outbox rows, records every attempt, and retries failures with
   exponential backoff. It runs outside monitoring runs, so a dead channel never blocks them.

Notifications are grouped: one message per (alert, channel) per evaluation, listing every entity
that fired (the first `group_limit` in detail), never one message per event.
"""

import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.alerts.channels import DeliveryError, Message, send
from mm_dagster.alerts.config import AlertConfig, AlertConfigError, Channel, render
from mm_dagster.alerts.rules import EntityState, manual_reset, on_clean_window, on_event
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import EventKind, ResultStatusApp, event_kind_for
from mm_dagster.storage import database as db

log = logging.getLogger("mm_dagster.alerts")
CHECKS_ALERT = "dagster-checks"
PENDING, SENT, FAILED = "pending", "sent", "failed"


def result_entity(endpoint_id: str, app: str, result: str) -> str:
    return f"{endpoint_id}.{app}.result.{result}"


def app_entity(endpoint_id: str, app: str) -> str:
    return f"{endpoint_id}.{app}.app"


def events_of_report(report: AppWindowReport, now: datetime) -> list[dict[str, Any]]:
    """Event rows raised by a window report: detected/suspected results and app failures."""
    base = {
        "window_start": db.to_db_time(report.window.start),
        "window_end": db.to_db_time(report.window.end),
        "app": report.app,
        "created_at": db.to_db_time(now),
        "evaluated": False,
    }
    rows = []
    for endpoint_id, (results, _) in report.outputs.items():
        for r in results:
            kind = event_kind_for(r.kind, r.status)
            if kind is None:
                continue
            rows.append(
                {
                    **base,
                    "kind": kind.value,
                    "entity": result_entity(endpoint_id, report.app, r.name),
                    "endpoint_id": endpoint_id,
                    "endpoint_name": report.endpoint_names.get(endpoint_id, endpoint_id),
                    "result_name": r.name,
                    "value": r.value,
                    "status": int(r.status),
                    "detail": None,
                }
            )
    for endpoint_id, error in report.failures.items():
        rows.append(
            {
                **base,
                "kind": EventKind.mm_app_failed.value,
                "entity": app_entity(endpoint_id, report.app),
                "endpoint_id": endpoint_id,
                "endpoint_name": report.endpoint_names.get(endpoint_id, endpoint_id),
                "result_name": None,
                "value": None,
                "status": None,
                "detail": error[:4000],
            }
        )
    return rows


def clean_entities_of_report(report: AppWindowReport) -> list[tuple[str, datetime]]:
    """Entities whose window came back clean (for auto-reset)."""
    clean = []
    for endpoint_id, (results, _) in report.outputs.items():
        clean.append((app_entity(endpoint_id, report.app), report.window.end))
        clean += [
            (result_entity(endpoint_id, report.app, r.name), report.window.end)
            for r in results
            if r.status <= ResultStatusApp.no_detection
        ]
    return clean


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lines: list[str] | None = None


def _state_of(row: Any) -> EntityState:
    m = row._mapping
    return EntityState(
        active=bool(m["active"]),
        activated_at=db.from_db_time(m["activated_at"]),
        last_event_at=db.from_db_time(m["last_event_at"]),
        last_notified_at=db.from_db_time(m["last_notified_at"]),
        recent=tuple(db.from_db_time(datetime.fromisoformat(t)) for t in m["recent"]),
    )


def _state_row(state: EntityState, now: datetime) -> dict[str, Any]:
    return {
        "active": state.active,
        "activated_at": db.to_db_time(state.activated_at),
        "last_event_at": db.to_db_time(state.last_event_at),
        "last_notified_at": db.to_db_time(state.last_notified_at),
        "recent": [db.to_db_time(t).isoformat() for t in state.recent],  # type: ignore[union-attr]
        "updated_at": db.to_db_time(now),
    }


class AlertManager:
    def __init__(
        self,
        engine: Engine,
        alerts: Sequence[AlertConfig] = (),
        *,
        check_channels: Sequence[Channel] = (),
        project: str = "default",
        clock: Clock = utcnow,
        max_attempts: int = 8,
        backoff_base: timedelta = timedelta(seconds=30),
        backoff_max: timedelta = timedelta(hours=1),
        group_limit: int = 50,
    ) -> None:
        names = [a.name for a in alerts]
        if len(set(names)) != len(names) or CHECKS_ALERT in names:
            raise AlertConfigError(f"alert names must be unique and not {CHECKS_ALERT!r}: {names}")
        self.engine = engine
        self.alerts = {a.name: a for a in alerts}
        self.check_channels = list(check_channels)
        self.project = project
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.group_limit = group_limit

    # -- events -------------------------------------------------------------------------------
    def record_report(self, report: AppWindowReport) -> int:
        """Store the report's events, then evaluate. Returns how many events were new."""
        now = self.clock()
        new = self._insert_events(events_of_report(report, now))
        self.evaluate(clean=clean_entities_of_report(report))
        return new

    def _insert_events(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        t = db.alert_events
        inserted = 0
        with self.engine.begin() as conn:
            by_window: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                by_window[r["window_start"]].append(r)
            for window_start, group in by_window.items():
                existing = {
                    (k, e)
                    for k, e in conn.execute(
                        sa.select(t.c.kind, t.c.entity).where(
                            t.c.window_start == window_start,
                            t.c.entity.in_({r["entity"] for r in group}),
                        )
                    )
                }
                fresh = [r for r in group if (r["kind"], r["entity"]) not in existing]
                if fresh:
                    conn.execute(t.insert(), fresh)
                    inserted += len(fresh)
        return inserted

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, clean: Iterable[tuple[str, datetime]] = ()) -> list[int]:
        """Evaluate all unevaluated events; returns ids of the notifications written."""
        now = self.clock()
        token = uuid.uuid4().hex
        t = db.alert_events
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.evaluated.is_(False)).values(evaluated=True, claim=token))
            events = [
                r._mapping
                for r in conn.execute(sa.select(t).where(t.c.claim == token).order_by(t.c.window_end, t.c.id))
            ]
            states = self._load_states(conn, events, clean)
            fired: dict[str, list[dict[str, Any]]] = defaultdict(list)
            changed: set[tuple[str, str]] = set()
            for ev in events:
                for alert in self._alerts_for(ev):
                    key = (alert.name, ev["entity"])
                    state, notify = on_event(
                        alert, states.get(key, EntityState()), db.from_db_time(ev["window_end"]), now
                    )
                    states[key] = state
                    changed.add(key)
                    if notify:
                        fired[alert.name].append(dict(ev))
            for entity, window_end in clean:
                for alert in self.alerts.values():
                    key = (alert.name, entity)
                    if key in states and states[key].active:
                        new_state = on_clean_window(alert, states[key], window_end)
                        if new_state != states[key]:
                            states[key] = new_state
                            changed.add(key)
            self._save_states(conn, {k: states[k] for k in changed}, now)
            ids = []
            for alert_name, alert_events in fired.items():
                ids += self._enqueue_alert(conn, self.alerts[alert_name], alert_events, now)
            return ids

    def _alerts_for(self, ev: Any) -> list[AlertConfig]:
        kind = EventKind(ev["kind"])
        return [
            a
            for a in self.alerts.values()
            if kind in a.trigger
            and a.entities.matches(ev["endpoint_id"], ev["endpoint_name"], ev["app"], ev["result_name"])
        ]

    def _load_states(
        self, conn: sa.Connection, events: list[Any], clean: Iterable[tuple[str, datetime]]
    ) -> dict[tuple[str, str], EntityState]:
        s = db.alert_states
        entities = {e["entity"] for e in events}
        rows = []
        if entities:
            for chunk in _chunks(sorted(entities), 500):
                rows += list(conn.execute(sa.select(s).where(s.c.entity.in_(chunk))))
        if clean:
            rows += list(conn.execute(sa.select(s).where(s.c.active.is_(True))))
        return {(r._mapping["alert"], r._mapping["entity"]): _state_of(r) for r in rows}

    def _save_states(
        self, conn: sa.Connection, states: dict[tuple[str, str], EntityState], now: datetime
    ) -> None:
        s = db.alert_states
        for (alert, entity), state in states.items():
            values = _state_row(state, now)
            updated = conn.execute(
                s.update().where(s.c.alert == alert, s.c.entity == entity).values(**values)
            ).rowcount
            if not updated:
                conn.execute(s.insert().values(alert=alert, entity=entity, **values))

    def _message(self, alert: AlertConfig, events: list[dict[str, Any]]) -> Message:
        entities = sorted({e["entity"] for e in events})
        first = min(events, key=lambda e: e["entity"])
        readable = f"{first['endpoint_name']}/{first['app']}/{first['result_name'] or 'app'}"
        entity_text = readable + (f" and {len(entities) - 1} more" if len(entities) > 1 else "")

        subject = f"[{alert.severity}] " + render(
            alert.summary, project=self.project, name=alert.name, entity=entity_text
        )
        shown = events[: self.group_limit]
        lines = [
            f"- {e['kind']} {e['endpoint_name']} / {e['app']}"
            + (f" / {e['result_name']}" if e["result_name"] else "")
            + f" window {db.from_db_time(e['window_start']):%Y-%m-%d %H:%M}"
            + (f" value {e['value']:.4f}" if e["value"] is not None else "")
            + (f": {e['detail'][:300]}" if e["detail"] else "")
            for e in shown
        ]
        if len(events) > len(shown):
            lines.append(f"… and {len(events) - len(shown)} more events")
        text = "\n".join(lines)
        payload = {
            "alert": alert.name,
            "project": self.project,
            "severity": str(alert.severity),
            "summary": subject,
            "entities": entities[:1000],
            "entity_count": len(entities),
            "event_count": len(events),
            "truncated": len(events) > len(shown),
            "text": text,
            "events": [
                {
                    "kind": e["kind"],
                    "entity": e["entity"],
                    "endpoint_id": e["endpoint_id"],
                    "endpoint_name": e["endpoint_name"],
                    "app": e["app"],
                    "result": e["result_name"],
                    "window_start": db.from_db_time(e["window_start"]).isoformat(),
                    "value": e["value"],
                    "status": e["status"],
                }
                for e in shown
            ],
        }
        return Message(subject, text, payload)

    def _enqueue_alert(
        self, conn: sa.Connection, alert: AlertConfig, events: list[dict[str, Any]], now: datetime
    ) -> list[int]:
        message = self._message(alert, events)
        digest = hashlib.sha256(",".join(str(e["id"]) for e in events).encode()).hexdigest()[:32]
        return [
            self._enqueue(conn, alert.name, i, channel, f"{alert.name}|{i}|{digest}", message, now)
            for i, channel in enumerate(alert.notifications)
        ]

    def _enqueue(
        self,
        conn: sa.Connection,
        alert: str,
        index: int,
        channel: Channel,
        dedup_key: str,
        message: Message,
        now: datetime,
    ) -> int:
        n = db.notifications
        return int(
            conn.execute(
                n.insert().values(
                    alert=alert,
                    channel_index=index,
                    channel=channel.label,
                    dedup_key=dedup_key,
                    subject=message.subject,
                    payload=message.payload,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=db.to_db_time(now),
                    created_at=db.to_db_time(now),
                )
            ).inserted_primary_key[0]
        )

    # -- Dagster check failures -------------------------------------------------------------
    def enqueue_check_failure(
        self, check: str, partition: str | None, severity: str, metadata: dict[str, Any]
    ) -> bool:
        """Queue one notification per channel for a failed check on a window; False if that
        (check, window) was already queued."""
        if not self.check_channels:
            return False
        now = self.clock()
        subject = f"[{severity}] {self.project}: check {check} failed for window {partition}"
        text = "\n".join(f"- {k}: {v}" for k, v in metadata.items())
        message = Message(
            subject,
            text,
            {
                "alert": CHECKS_ALERT,
                "project": self.project,
                "check": check,
                "window": partition,
                "severity": severity,
                "summary": subject,
                "text": text,
                "metadata": {k: str(v) for k, v in metadata.items()},
            },
        )
        n = db.notifications
        with self.engine.begin() as conn:
            keys = [f"check|{i}|{check}|{partition}" for i in range(len(self.check_channels))]
            if conn.execute(sa.select(n.c.id).where(n.c.dedup_key.in_(keys))).first():
                return False
            try:
                for i, channel in enumerate(self.check_channels):
                    self._enqueue(conn, CHECKS_ALERT, i, channel, keys[i], message, now)
            except sa.exc.IntegrityError:
                return False  # queued concurrently
        return True

    # -- delivery -----------------------------------------------------------------------------
    def _channel(self, alert: str, index: int) -> Channel | None:
        channels = (
            self.check_channels
            if alert == CHECKS_ALERT
            else (self.alerts[alert].notifications if alert in self.alerts else [])
        )
        return channels[index] if index < len(channels) else None

    def backoff(self, attempts: int) -> timedelta:
        return min(self.backoff_base * (2 ** max(attempts - 1, 0)), self.backoff_max)

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Send due notifications once each; failures are rescheduled with backoff."""
        now = self.clock()
        n = db.notifications
        report = DeliveryReport(lines=[])
        with self.engine.connect() as conn:
            due = list(
                conn.execute(
                    sa.select(n)
                    .where(n.c.status == PENDING, n.c.next_attempt_at <= db.to_db_time(now))
                    .order_by(n.c.id)
                    .limit(limit)
                )
            )
        for row in due:
            m = row._mapping
            channel = self._channel(m["alert"], m["channel_index"])
            lease = timedelta(seconds=getattr(channel, "timeout_seconds", 10) * 3 + 30)
            with self.engine.begin() as conn:
                claimed = conn.execute(
                    n.update()
                    .where(
                        n.c.id == m["id"],
                        n.c.status == PENDING,
                        sa.or_(n.c.claimed_until.is_(None), n.c.claimed_until < db.to_db_time(now)),
                    )
                    .values(claimed_until=db.to_db_time(now + lease))
                ).rowcount
            if not claimed:
                continue
            started = time.perf_counter()
            error: str | None = None
            if channel is None:
                error = f"channel {m['channel']!r} of alert {m['alert']!r} is no longer configured"
            else:
                try:
                    send(channel, Message(m["subject"], m["payload"].get("text", ""), m["payload"]))
                except (DeliveryError, AlertConfigError) as exc:
                    error = str(exc)
            self._record_attempt(m, error, (time.perf_counter() - started) * 1000, channel is None)
            if error is None:
                report.sent += 1
                report.lines.append(f"sent {m['alert']} via {m['channel']}: {m['subject']}")  # type: ignore[union-attr]
            elif channel is None or m["attempts"] + 1 >= self.max_attempts:
                report.failed += 1
                report.lines.append(f"gave up {m['alert']} via {m['channel']}: {error}")  # type: ignore[union-attr]
            else:
                report.retrying += 1
                report.lines.append(f"retrying {m['alert']} via {m['channel']}: {error}")  # type: ignore[union-attr]
        return report

    def _record_attempt(self, m: Any, error: str | None, duration_ms: float, fatal: bool) -> None:
        now = self.clock()
        n, a = db.notifications, db.notification_attempts
        attempts = m["attempts"] + 1
        if error is None:
            values = {"status": SENT, "sent_at": db.to_db_time(now), "last_error": None}
        elif fatal or attempts >= self.max_attempts:
            values = {"status": FAILED, "last_error": error}
        else:
            values = {"next_attempt_at": db.to_db_time(now + self.backoff(attempts)), "last_error": error}
        if error is not None:
            log.warning(
                "notification %s (%s via %s) failed, attempt %d: %s",
                m["id"],
                m["alert"],
                m["channel"],
                attempts,
                error,
            )
        with self.engine.begin() as conn:
            conn.execute(
                a.insert().values(
                    notification_id=m["id"],
                    attempted_at=db.to_db_time(now),
                    ok=error is None,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            conn.execute(
                n.update().where(n.c.id == m["id"]).values(attempts=attempts, claimed_until=None, **values)
            )

    # -- inspection ---------------------------------------------------------------------------
    def states(self, alert: str | None = None, active_only: bool = False) -> list[dict[str, Any]]:
        s = db.alert_states
        query = sa.select(s).order_by(s.c.alert, s.c.entity)
        if alert:
            query = query.where(s.c.alert == alert)
        if active_only:
            query = query.where(s.c.active.is_(True))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def list_alerts(self) -> list[dict[str, Any]]:
        """Every configured alert with its active entities and last notification."""
        states = self.states()
        out = []
        for name, alert in self.alerts.items():
            mine = [s for s in states if s["alert"] == name]
            notified = [s["last_notified_at"] for s in mine if s["last_notified_at"]]
            out.append(
                {
                    "name": name,
                    "severity": str(alert.severity),
                    "reset_policy": str(alert.reset_policy),
                    "active_entities": [s["entity"] for s in mine if s["active"]],
                    "state": "active" if any(s["active"] for s in mine) else "inactive",
                    "last_notified_at": db.from_db_time(max(notified)) if notified else None,
                }
            )
        return out

    def events(self, alert: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        t = db.alert_events
        with self.engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(t).order_by(t.c.window_start.desc(), t.c.id.desc()).limit(limit * 10)
                )
            ]
        if alert:
            cfg = self.alerts[alert]
            rows = [
                r
                for r in rows
                if EventKind(r["kind"]) in cfg.trigger
                and cfg.entities.matches(r["endpoint_id"], r["endpoint_name"], r["app"], r["result_name"])
            ]
        return rows[:limit]

    def notifications(self, alert: str | None = None) -> list[dict[str, Any]]:
        n = db.notifications
        query = sa.select(n).order_by(n.c.id)
        if alert:
            query = query.where(n.c.alert == alert)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def attempts(self, notification_id: int) -> list[dict[str, Any]]:
        a = db.notification_attempts
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(a).where(a.c.notification_id == notification_id).order_by(a.c.id)
                )
            ]

    def reset(self, alert: str, entity: str | None = None) -> int:
        """Reset an alert (all its entities, or one) to inactive. Returns how many were reset."""
        if alert not in self.alerts:
            raise AlertConfigError(f"unknown alert {alert!r} (configured: {sorted(self.alerts)})")
        now = self.clock()
        s = db.alert_states
        with self.engine.begin() as conn:
            query = sa.select(s).where(s.c.alert == alert, s.c.active.is_(True))
            if entity:
                query = query.where(s.c.entity == entity)
            rows = list(conn.execute(query))
            for r in rows:
                conn.execute(
                    s.update()
                    .where(s.c.alert == alert, s.c.entity == r._mapping["entity"])
                    .values(**_state_row(manual_reset(_state_of(r)), now))
                )
        return len(rows)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
