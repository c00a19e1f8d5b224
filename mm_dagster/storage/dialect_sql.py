"""Statements whose SQL differs by database: inserts that tolerate a row stored already (also by
a concurrent writer), for SQLite, PostgreSQL and MySQL/MariaDB."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert


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


def insert_ignoring_duplicates_count(conn: sa.Connection, table: sa.Table, row: dict[str, Any]) -> int:
    """Insert `row` unless its unique key is stored already; returns 1 if it was inserted, else 0
    (by RETURNING where the database has it: PostgreSQL gives no rowcount with one)."""
    statement = insert_ignoring_duplicates(conn, table).values(**row)
    if conn.dialect.insert_returning:
        first_key = next(iter(table.primary_key.columns))
        return len(conn.execute(statement.returning(first_key)).all())
    return int(conn.execute(statement).rowcount)


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
    conn.execute(statement, rows)
