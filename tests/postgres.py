"""A fresh PostgreSQL database per test run on the loopback server (MM_TEST_POSTGRES_URL names the
server; default `postgresql+psycopg://postgres@127.0.0.1:5432/test`), dropped afterwards. Tests on
other workers using the server's shared database never see it."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

SERVER_URL = os.environ.get("MM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def reachable_or_skip(url: str | sa.URL, what: str) -> None:
    """The calling test skips, with the reason, when the database at `url` does not answer."""
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"{what} is not reachable at {url!r}: {type(exc).__name__}: {exc}"[:300])


def server_or_skip() -> sa.URL:
    """The server's URL; the calling test skips, with the reason, when it does not answer."""
    url = sa.make_url(SERVER_URL)
    reachable_or_skip(url, "PostgreSQL")
    return url


@contextmanager
def fresh_database(prefix: str = "mm_test") -> Iterator[sa.URL]:
    """Create an empty database, yield its URL (same server, user and driver), drop it on exit."""
    with _created_database(server_or_skip(), prefix, "") as url:
        yield url


@contextmanager
def cloned_database(source: sa.URL, prefix: str) -> Iterator[sa.URL]:
    """A copy of `source` (PostgreSQL's CREATE DATABASE ... TEMPLATE; nobody may be connected
    to `source` meanwhile), dropped on exit."""
    with _created_database(source, prefix, f' TEMPLATE "{source.database}"') as url:
        yield url


@contextmanager
def _created_database(server: sa.URL, prefix: str, options: str) -> Iterator[sa.URL]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{options}'))
        try:
            yield server.set(database=name)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
