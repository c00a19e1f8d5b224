"""Bearer tokens of the ingestion API (`mm_api_tokens`): created, listed, revoked, checked.

A token is `mmt_` followed by 43 URL-safe characters (`secrets.token_urlsafe(32)`: 256 random
bits), shown once when it is created. Only its SHA-256 is stored: a salted slow hash buys nothing
against guessing 256 random bits, and a plain digest lets a request find its token by index.
A token's scope is one endpoint (`endpoint:<name>`) or the whole project (`project`).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import MonitoringError
from mm_dagster.storage import database as db

TOKEN_PREFIX = "mmt_"
SECRET_BYTES = 32
SECRET_CHARS = len(secrets.token_urlsafe(SECRET_BYTES))
PROJECT_SCOPE = "project"
ENDPOINT_SCOPE_PREFIX = "endpoint:"
LAST_USED_RESOLUTION = timedelta(minutes=1)  # `last_used_at` is written at most this often
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class UnknownTokenError(MonitoringError):
    """A token name or id that no stored token has."""


@dataclass(frozen=True)
class ApiToken:
    """A stored token, without its secret."""

    id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def endpoint(self) -> str | None:
        """The endpoint name the token is scoped to; None for a project token."""
        if self.scope.startswith(ENDPOINT_SCOPE_PREFIX):
            return self.scope[len(ENDPOINT_SCOPE_PREFIX) :]
        return None

    def allows(self, endpoint_name: str) -> bool:
        return self.scope == PROJECT_SCOPE or self.endpoint == endpoint_name


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once; not stored


def endpoint_scope(endpoint_name: str) -> str:
    return f"{ENDPOINT_SCOPE_PREFIX}{endpoint_name}"


def well_formed(secret: str) -> bool:
    """Whether `secret` looks like a token this module issues (checked before any lookup)."""
    body = secret[len(TOKEN_PREFIX) :]
    return secret.startswith(TOKEN_PREFIX) and len(body) == SECRET_CHARS and set(body) <= _URLSAFE


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenStore:
    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, name: str, scope: str) -> CreatedToken:
        """A new token; its secret is in the result and nowhere else."""
        name = name.strip()
        if not name or len(name) > 128:
            raise MonitoringError(f"token name must be 1 to 128 characters, got {name!r}")
        if scope != PROJECT_SCOPE and not (
            scope.startswith(ENDPOINT_SCOPE_PREFIX) and len(scope) > len(ENDPOINT_SCOPE_PREFIX)
        ):
            raise MonitoringError(f"token scope must be 'project' or 'endpoint:<name>', got {scope!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        t = db.api_tokens
        now = db.to_db_time(self.clock())
        try:
            with self.engine.begin() as conn:
                inserted = conn.execute(
                    t.insert().values(name=name, scope=scope, secret_sha256=_digest(secret), created_at=now)
                ).inserted_primary_key
                if inserted is None:
                    raise RuntimeError("the database returned no id for the new token")
                token_id = int(inserted[0])
        except sa.exc.IntegrityError:
            raise MonitoringError(f"a token named {name!r} exists already") from None
        token = ApiToken(token_id, name, scope, db.from_db_time(now), None, None)
        return CreatedToken(token, secret)

    def list(self) -> list[ApiToken]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.api_tokens).order_by(db.api_tokens.c.id))
            return [_row_to_token(r) for r in rows]

    def revoke(self, id_or_name: str) -> ApiToken:
        """Revoke the token with this id or name (revoking twice keeps the first time)."""
        t = db.api_tokens
        where = t.c.name == id_or_name
        if id_or_name.isdigit():
            where = sa.or_(where, t.c.id == int(id_or_name))
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(t).where(where)).all()
            if not rows:
                raise UnknownTokenError(f"no token has the id or name {id_or_name!r}")
            if len(rows) > 1:
                raise MonitoringError(
                    f"{id_or_name!r} is the id of one token and the name of another: "
                    f"revoke by name ({', '.join(repr(r.name) for r in rows)})"
                )
            row = rows[0]
            if row.revoked_at is None:
                conn.execute(
                    t.update().where(t.c.id == row.id).values(revoked_at=db.to_db_time(self.clock()))
                )
        return self.get(row.id)

    def get(self, token_id: int) -> ApiToken:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.api_tokens).where(db.api_tokens.c.id == token_id)).first()
        if row is None:
            raise UnknownTokenError(f"no token has the id {token_id}")
        return _row_to_token(row)

    def authenticate(self, secret: str) -> ApiToken | None:
        """The live (not revoked) token whose secret this is, or None. Marks it used."""
        if not well_formed(secret):
            return None
        digest = _digest(secret)
        t = db.api_tokens
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.secret_sha256 == digest)).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, digest) or row.revoked_at is not None:
            return None
        token = _row_to_token(row)
        now = self.clock()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            with self.engine.begin() as conn:
                conn.execute(t.update().where(t.c.id == token.id).values(last_used_at=db.to_db_time(now)))
        return token


def _row_to_token(row: sa.Row[tuple[object, ...]]) -> ApiToken:
    m = row._mapping
    return ApiToken(
        id=int(m["id"]),
        name=str(m["name"]),
        scope=str(m["scope"]),
        created_at=db.from_db_time(m["created_at"]),
        last_used_at=db.from_db_time(m["last_used_at"]),
        revoked_at=db.from_db_time(m["revoked_at"]),
    )
