"""All alert SQL: events (unique per kind, entity and window), entity states, the notification
outbox and every delivery attempt. Rows come back as the values of `mm_dagster.core.alerting`."""

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.alerting.events import AlertEvent, StoredAlertEvent
from mm_dagster.core.alerting.outbox import (
    AttemptOutcome,
    Notification,
    NotificationAttempt,
    NotificationStatus,
    OutboxEntry,
)
from mm_dagster.core.alerting.rules import EntityState, StateKey, manual_reset
from mm_dagster.core.schemas import EventKind, ResultStatusApp
from mm_dagster.storage import database as db
from mm_dagster.storage.dialect_sql import (
    in_transaction_retrying_deadlocks,
    insert_ignoring_duplicates_count,
    insert_ignoring_duplicates_keys,
)


def _event_row(event: AlertEvent, created_at: datetime) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "entity": event.entity,
        "endpoint_id": event.endpoint_id,
        "endpoint_name": event.endpoint_name,
        "app": event.app,
        "result_name": event.result_name,
        "window_start": db.to_db_time(event.window_start),
        "window_end": db.to_db_time(event.window_end),
        "value": event.value,
        "status": None if event.status is None else int(event.status),
        "detail": event.detail,
        "segment": event.segment,
        "created_at": db.to_db_time(created_at),
        "evaluated": False,
    }


def _event(row: sa.Row[Any]) -> StoredAlertEvent:
    m = row._mapping
    return StoredAlertEvent(
        id=m["id"],
        kind=EventKind(m["kind"]),
        entity=m["entity"],
        endpoint_id=m["endpoint_id"],
        endpoint_name=m["endpoint_name"],
        app=m["app"],
        result_name=m["result_name"],
        window_start=db.from_db_time(m["window_start"]),
        window_end=db.from_db_time(m["window_end"]),
        value=m["value"],
        status=None if m["status"] is None else ResultStatusApp(m["status"]),
        detail=m["detail"],
        segment=m["segment"] or "",
        created_at=db.from_db_time(m["created_at"]),
        evaluated=bool(m["evaluated"]),
    )


def _state(row: sa.Row[Any]) -> EntityState:
    m = row._mapping
    return EntityState(
        active=bool(m["active"]),
        activated_at=db.from_db_time(m["activated_at"]),
        last_event_at=db.from_db_time(m["last_event_at"]),
        last_notified_at=db.from_db_time(m["last_notified_at"]),
        recent=tuple(db.from_db_time(datetime.fromisoformat(t)) for t in m["recent"]),
    )


def _states(rows: Iterable[sa.Row[Any]]) -> dict[StateKey, EntityState]:
    return {(r._mapping["alert"], r._mapping["entity"]): _state(r) for r in rows}


def _state_row(state: EntityState, now: datetime) -> dict[str, Any]:
    return {
        "active": state.active,
        "activated_at": db.to_db_time(state.activated_at),
        "last_event_at": db.to_db_time(state.last_event_at),
        "last_notified_at": db.to_db_time(state.last_notified_at),
        "recent": [db.to_db_time(t).isoformat() for t in state.recent],
        "updated_at": db.to_db_time(now),
    }


def _notification(row: sa.Row[Any]) -> Notification:
    m = row._mapping
    return Notification(
        id=m["id"],
        alert=m["alert"],
        channel_index=m["channel_index"],
        channel=m["channel"],
        dedup_key=m["dedup_key"],
        subject=m["subject"],
        payload=m["payload"],
        status=NotificationStatus(m["status"]),
        attempts=m["attempts"],
        next_attempt_at=db.from_db_time(m["next_attempt_at"]),
        claimed_until=db.from_db_time(m["claimed_until"]),
        created_at=db.from_db_time(m["created_at"]),
        sent_at=db.from_db_time(m["sent_at"]),
        last_error=m["last_error"],
        uid=m["uid"],
    )


def _attempt(row: sa.Row[Any]) -> NotificationAttempt:
    m = row._mapping
    return NotificationAttempt(
        id=m["id"],
        notification_id=m["notification_id"],
        attempted_at=db.from_db_time(m["attempted_at"]),
        ok=bool(m["ok"]),
        error=m["error"],
        duration_ms=m["duration_ms"],
    )


def _enqueue(conn: sa.Connection, entry: OutboxEntry, now: datetime) -> int:
    inserted = conn.execute(
        db.notifications.insert().values(
            alert=entry.alert,
            channel_index=entry.channel_index,
            channel=entry.channel,
            dedup_key=entry.dedup_key,
            subject=entry.message.subject,
            payload=entry.message.payload,
            status=NotificationStatus.pending.value,
            attempts=0,
            next_attempt_at=db.to_db_time(now),
            created_at=db.to_db_time(now),
            uid=str(uuid.uuid4()),
        )
    )
    key = inserted.inserted_primary_key
    if key is None:
        raise RuntimeError("inserting a notification returned no primary key")
    return int(key[0])


def _save_states(conn: sa.Connection, states: Mapping[StateKey, EntityState], now: datetime) -> None:
    """Update the stored states, insert the others (in bulk); a state a concurrent evaluation
    inserted first is updated: ours is the newer."""
    if not states:
        return
    s = db.alert_states
    rows = [
        {"alert": alert, "entity": entity, **_state_row(state, now)}
        for (alert, entity), state in states.items()
    ]
    stored: set[tuple[Any, ...]] = set()
    for alert in {r["alert"] for r in rows}:
        entities = sorted(r["entity"] for r in rows if r["alert"] == alert)
        for chunk in db.in_chunks(entities):
            query = sa.select(s.c.alert, s.c.entity).where(s.c.alert == alert, s.c.entity.in_(chunk))
            stored |= {tuple(r) for r in conn.execute(query)}
    fresh = [r for r in rows if (r["alert"], r["entity"]) not in stored]
    inserted = insert_ignoring_duplicates_keys(conn, s, fresh, ["alert", "entity"])
    updates = [r for r in rows if (r["alert"], r["entity"]) not in inserted]
    if updates:
        values: dict[str, Any] = {
            c: sa.bindparam(f"new_{c}") for c in updates[0] if c not in ("alert", "entity")
        }
        statement = (
            s.update()
            .where(s.c.alert == sa.bindparam("key_alert"), s.c.entity == sa.bindparam("key_entity"))
            .values(values)
        )
        conn.execute(
            statement,
            [
                {"key_alert": r["alert"], "key_entity": r["entity"]}
                | {f"new_{c}": v for c, v in r.items() if c not in ("alert", "entity")}
                for r in updates
            ],
        )


class AlertTransaction:
    """One evaluation's transaction: claim the unevaluated events, load and save entity states,
    queue notifications. Nothing of it is visible until it commits, and a crash loses none of it."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def claim_unevaluated_events(self, kinds: Collection[EventKind]) -> list[StoredAlertEvent]:
        """Mark every unevaluated event evaluated and return those of `kinds` (the others no
        alert watches), oldest window first."""
        t = db.alert_events
        token = uuid.uuid4().hex
        self._conn.execute(t.update().where(t.c.evaluated.is_(False)).values(evaluated=True, claim=token))
        if not kinds:
            return []
        claimed = (
            sa.select(t)
            .where(t.c.claim == token, t.c.kind.in_(sorted(k.value for k in kinds)))
            .order_by(t.c.window_end, t.c.id)
        )
        return [_event(r) for r in self._conn.execute(claimed)]

    def load_states(self, entities: Collection[str], *, with_active: bool) -> dict[StateKey, EntityState]:
        """The states of `entities` under every alert, and with `with_active` every active state."""
        s = db.alert_states
        rows: list[sa.Row[Any]] = []
        for chunk in db.in_chunks(sorted(entities)):
            rows += self._conn.execute(sa.select(s).where(s.c.entity.in_(chunk)))
        if with_active:
            rows += self._conn.execute(sa.select(s).where(s.c.active.is_(True)))
        return _states(rows)

    def save_states(self, states: Mapping[StateKey, EntityState], now: datetime) -> None:
        _save_states(self._conn, states, now)

    def enqueue(self, entry: OutboxEntry, now: datetime) -> int:
        """Queue `entry`, due at `now`; returns the notification id."""
        return _enqueue(self._conn, entry, now)


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- events and evaluation -------------------------------------------------------------
    def insert_events(self, events: Sequence[AlertEvent], created_at: datetime) -> int:
        """Store the events not stored yet (by kind, entity and window start); returns how many."""
        if not events:
            return 0
        t = db.alert_events
        by_window: dict[datetime | None, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            row = _event_row(event, created_at)
            by_window[row["window_start"]].append(row)

        def insert(conn: sa.Connection) -> int:
            inserted = 0
            for window_start, group in by_window.items():
                stored = sa.select(t.c.kind, t.c.entity).where(
                    t.c.window_start == window_start, t.c.entity.in_({r["entity"] for r in group})
                )
                existing = {(kind, entity) for kind, entity in conn.execute(stored)}
                fresh = [r for r in group if (r["kind"], r["entity"]) not in existing]
                # skipping what a concurrent run of the same window stored meanwhile
                inserted += insert_ignoring_duplicates_count(conn, t, fresh, ["kind", "entity"])
            return inserted

        # MariaDB's gap locks can make two runs of one window deadlock here: the loser runs again
        return in_transaction_retrying_deadlocks(self.engine, insert)

    @contextmanager
    def transaction(self) -> Iterator[AlertTransaction]:
        """Commits when the block ends, rolls back if it raises."""
        with self.engine.begin() as conn:
            yield AlertTransaction(conn)

    # -- the outbox ------------------------------------------------------------------------
    def enqueue_unless_queued(self, entries: Sequence[OutboxEntry], now: datetime) -> bool:
        """Queue all `entries` in one transaction, or none if any of their dedup keys is queued
        already (also by a concurrent writer). Returns whether they were queued."""
        n = db.notifications
        with self.engine.begin() as conn:
            keys = [e.dedup_key for e in entries]
            if conn.execute(sa.select(n.c.id).where(n.c.dedup_key.in_(keys))).first():
                return False
            try:
                for entry in entries:
                    _enqueue(conn, entry, now)
            except sa.exc.IntegrityError:
                return False
        return True

    def due_notifications(self, now: datetime, limit: int) -> list[Notification]:
        """Pending notifications whose next attempt is due, oldest first."""
        n = db.notifications
        query = (
            sa.select(n)
            .where(n.c.status == NotificationStatus.pending.value, n.c.next_attempt_at <= db.to_db_time(now))
            .order_by(n.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_notification(r) for r in conn.execute(query)]

    def claim_notification(self, notification_id: int, now: datetime, until: datetime) -> bool:
        """Lease a pending notification until `until`, unless another sender holds a live lease."""
        n = db.notifications
        with self.engine.begin() as conn:
            claimed = conn.execute(
                n.update()
                .where(
                    n.c.id == notification_id,
                    n.c.status == NotificationStatus.pending.value,
                    sa.or_(n.c.claimed_until.is_(None), n.c.claimed_until < db.to_db_time(now)),
                )
                .values(claimed_until=db.to_db_time(until))
            ).rowcount
        return bool(claimed)

    def record_attempt(self, notification_id: int, outcome: AttemptOutcome) -> None:
        """Store the attempt and move the notification on as `outcome` says; releases the lease."""
        n, a = db.notifications, db.notification_attempts
        at = db.to_db_time(outcome.attempted_at)
        values: dict[str, Any]
        if outcome.status == NotificationStatus.sent:
            values = {"status": outcome.status.value, "sent_at": at, "last_error": None}
        elif outcome.status == NotificationStatus.failed:
            values = {"status": outcome.status.value, "last_error": outcome.error}
        else:
            values = {"next_attempt_at": db.to_db_time(outcome.next_attempt_at), "last_error": outcome.error}
        with self.engine.begin() as conn:
            conn.execute(
                a.insert().values(
                    notification_id=notification_id,
                    attempted_at=at,
                    ok=outcome.error is None,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            conn.execute(
                n.update()
                .where(n.c.id == notification_id)
                .values(attempts=outcome.attempts, claimed_until=None, **values)
            )

    def requeue_failed(
        self,
        now: datetime,
        *,
        alert: str | None = None,
        notification_id: int | None = None,
        channel_index: int | None = None,
    ) -> int:
        """Failed notifications (all, or those matching the given filters) pending again, due at
        `now`, attempts count reset; their stored attempts stay. Returns how many."""
        n = db.notifications
        query = n.update().where(n.c.status == NotificationStatus.failed.value)
        if alert is not None:
            query = query.where(n.c.alert == alert)
        if notification_id is not None:
            query = query.where(n.c.id == notification_id)
        if channel_index is not None:
            query = query.where(n.c.channel_index == channel_index)
        values = {
            "status": NotificationStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": db.to_db_time(now),
            "claimed_until": None,
        }
        with self.engine.begin() as conn:
            return int(conn.execute(query.values(**values)).rowcount)

    def failed_counts(self) -> dict[str, int]:
        """How many notifications are failed (given up on), by alert."""
        n = db.notifications
        query = (
            sa.select(n.c.alert, sa.func.count())
            .where(n.c.status == NotificationStatus.failed.value)
            .group_by(n.c.alert)
        )
        with self.engine.connect() as conn:
            return {alert: int(count) for alert, count in conn.execute(query)}

    # -- inspection ------------------------------------------------------------------------
    def states(self, alert: str | None = None, active_only: bool = False) -> dict[StateKey, EntityState]:
        """Entity states by (alert, entity), in that order."""
        s = db.alert_states
        query = sa.select(s).order_by(s.c.alert, s.c.entity)
        if alert:
            query = query.where(s.c.alert == alert)
        if active_only:
            query = query.where(s.c.active.is_(True))
        with self.engine.connect() as conn:
            return _states(conn.execute(query))

    def recent_events(self, limit: int) -> list[StoredAlertEvent]:
        """The newest `limit` events, newest window first."""
        t = db.alert_events
        query = sa.select(t).order_by(t.c.window_start.desc(), t.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(query)]

    def notifications(self, alert: str | None = None) -> list[Notification]:
        n = db.notifications
        query = sa.select(n).order_by(n.c.id)
        if alert:
            query = query.where(n.c.alert == alert)
        with self.engine.connect() as conn:
            return [_notification(r) for r in conn.execute(query)]

    def attempts(self, notification_id: int) -> list[NotificationAttempt]:
        a = db.notification_attempts
        query = sa.select(a).where(a.c.notification_id == notification_id).order_by(a.c.id)
        with self.engine.connect() as conn:
            return [_attempt(r) for r in conn.execute(query)]

    def reset(self, alert: str, entity: str | None, now: datetime) -> int:
        """Reset the active states of `alert` (all its entities, or one); returns how many."""
        s = db.alert_states
        query = sa.select(s).where(s.c.alert == alert, s.c.active.is_(True))
        if entity:
            query = query.where(s.c.entity == entity)
        with self.engine.begin() as conn:
            active = _states(conn.execute(query))
            _save_states(conn, {key: manual_reset(state) for key, state in active.items()}, now)
        return len(active)
