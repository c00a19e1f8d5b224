"""Statements whose SQL differs by database: inserts that tolerate a row stored already (also by
a concurrent writer), for SQLite, PostgreSQL and MySQL/MariaDB; transactions run again when the
database chose them as a deadlock's victim."""

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Insert

T = TypeVar("T")
DEADLOCK_RETRIES = 10
DEADLOCK_PAUSE_SECONDS = 0.05  # times the attempt, jittered: concurrent writers fall out of step


def is_deadlock(exc: sa.exc.DBAPIError) -> bool:
    """A deadlock or serialization failure (PostgreSQL 40P01/40001, MySQL 1213): the whole
    transaction can simply run again."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    args = getattr(exc.orig, "args", ())
    return sqlstate in ("40P01", "40001") or bool(args and args[0] == 1213)


def in_transaction_retrying_deadlocks(engine: Engine, work: Callable[[sa.Connection], T]) -> T:
    """`work` in a transaction of its own, run again (up to DEADLOCK_RETRIES times, with a growing
    jittered pause) when the database aborts it as a deadlock victim; `work` must be safe to
    repeat from the start."""
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if attempt == DEADLOCK_RETRIES or not is_deadlock(exc):
                raise
            time.sleep(random.uniform(0.5, 1.5) * DEADLOCK_PAUSE_SECONDS * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def insert_ignoring_duplicates(conn: sa.Connection, table: sa.Table) -> Insert:
    """An INSERT that skips a row whose unique key is stored already (also by a concurrent
    writer) instead of raising `IntegrityError`."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return table.insert().prefix_with("IGNORE")
    raise NotImplementedError(f"no insert-ignoring-duplicates for the {dialect} dialect")


def insert_ignoring_duplicates_keys(
    conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], unique: Sequence[str]
) -> set[tuple[Any, ...]]:
    """Insert `rows` but those whose `unique` key is stored already (also by a concurrent
    writer); returns the `unique` keys of the rows it inserted. One bulk statement where the
    database returns inserted rows from one (RETURNING: PostgreSQL gives no rowcount for a bulk
    insert), else row by row."""
    if not rows:
        return set()
    statement = insert_ignoring_duplicates(conn, table)
    if conn.dialect.insert_executemany_returning:
        returned = conn.execute(statement.returning(*(table.c[k] for k in unique)), list(rows)).all()
        return {tuple(r) for r in returned}
    return {tuple(r[k] for k in unique) for r in rows if conn.execute(statement.values(**r)).rowcount}


def insert_ignoring_duplicates_count(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], unique: Sequence[str]
) -> int:
    """`insert_ignoring_duplicates_keys`, counting the rows inserted: on SQLite the driver's
    bulk insert counts them itself (the sum of each row's changes)."""
    if conn.dialect.name == "sqlite" and rows:
        return execute_many(conn, table, insert_ignoring_duplicates(conn, table), rows) or 0
    return len(insert_ignoring_duplicates_keys(conn, table, rows, unique))


def upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, updating a row whose primary key is stored already (also by a concurrent
    writer) instead of raising `IntegrityError`."""
    keys = {c.name for c in table.primary_key.columns}
    updated = [c for c in rows[0] if c not in keys]
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
        statement: Any = insert.on_conflict_do_update(
            index_elements=sorted(keys), set_={c: insert.excluded[c] for c in updated}
        )
    elif dialect in ("mysql", "mariadb"):
        my_insert = mysql.insert(table)
        statement = my_insert.on_duplicate_key_update({c: my_insert.inserted[c] for c in updated})
    else:
        raise NotImplementedError(f"no upsert for the {dialect} dialect")
    execute_many(conn, table, statement, rows)


def execute_many(
    conn: sa.Connection, table: sa.Table, statement: Any, rows: list[dict[str, Any]]
) -> int | None:
    """`conn.execute(statement, rows)` for a statement writing `rows` (each with the same keys,
    columns of `table`). On SQLite the statement is compiled here and the driver given the rows'
    values, each bound as SQLAlchemy binds it, a date and time column's once per distinct value
    (a window's rows share their times): SQLAlchemy's own per-row work took twice the driver's
    time (10,000 endpoints' results: ~1 s of 1.5). On SQLite the rows changed are returned (the
    driver sums them); elsewhere SQLAlchemy batches the rows itself and None is returned (bulk
    statements give no reliable count there)."""
    if conn.dialect.name != "sqlite":
        conn.execute(statement, rows)
        return None
    if len(rows) < 2:
        return int(conn.execute(statement, rows).rowcount)
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or ())
    if not names or any(n not in table.c or n not in rows[0] for n in names):
        return int(conn.execute(statement, rows).rowcount)
    columns = []
    for name in names:
        bind = _bound(table.c[name].type, conn.dialect)
        column = [row[name] for row in rows]
        columns.append([bind(v) for v in column] if bind else column)
    return int(conn.exec_driver_sql(compiled.string, list(zip(*columns, strict=True))).rowcount)


def _bound(column_type: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """How `dialect` binds a value of `column_type` (None: as it is); a date and time's binding
    remembered per value."""
    bind = column_type.dialect_impl(dialect).bind_processor(dialect)
    if bind is None or not isinstance(column_type, sa.DateTime):
        return bind
    seen: dict[Any, Any] = {}

    def bound_once(value: Any) -> Any:
        if value not in seen:
            seen[value] = bind(value)
        return seen[value]

    return bound_once


def upsert_newer_from(conn: sa.Connection, table: sa.Table, source: sa.Select[Any], newer_by: str) -> None:
    """Insert the rows `source` selects (one column per column of `table`, in its order); a row
    whose primary key is stored already replaces it only when its `newer_by` is not older:
    one statement, the rows never leave the database."""
    keys = [c.name for c in table.primary_key.columns]
    names = [c.name for c in table.columns]
    updated = [n for n in names if n not in keys]
    dialect = conn.dialect.name
    statement: Any
    if dialect in ("sqlite", "postgresql"):
        dialect_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        insert = dialect_insert(table).from_select(names, source)
        statement = insert.on_conflict_do_update(
            index_elements=keys,
            set_={n: insert.excluded[n] for n in updated},
            where=insert.excluded[newer_by] >= table.c[newer_by],
        )
    elif dialect in ("mysql", "mariadb"):
        # Assignments run left to right, each seeing those before it: whether `newer_by` was
        # replaced or kept, the comparison gives the same answer for every column after it.
        my_insert = mysql.insert(table).from_select(names, source)
        newer = my_insert.inserted[newer_by] >= table.c[newer_by]
        statement = my_insert.on_duplicate_key_update(
            [(n, sa.case((newer, my_insert.inserted[n]), else_=table.c[n])) for n in updated]
        )
    else:
        raise NotImplementedError(f"no upsert for the {dialect} dialect")
    conn.execute(statement)
