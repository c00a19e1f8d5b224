"""Bearer tokens: the store (hashed secrets, scopes, revocation) and `mm tokens`."""

import hashlib
import json
from datetime import timedelta

import pytest

from mm_dagster.cli import main
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage.api_tokens import (
    PROJECT_SCOPE,
    ApiTokenStore,
    UnknownTokenError,
    endpoint_scope,
    well_formed,
)

from .conftest import NOW


def test_a_token_is_shown_once_stored_hashed_and_checked(mm: Monitoring) -> None:
    store = ApiTokenStore(mm.engine, fixed_clock(NOW))
    created = store.create("ci", endpoint_scope("fraud-model"))
    assert created.secret.startswith("mmt_") and well_formed(created.secret)
    (listed,) = store.list()
    assert listed == created.token and listed.last_used_at is None
    with mm.engine.connect() as conn:
        (row,) = conn.exec_driver_sql("SELECT * FROM mm_api_tokens").all()
    assert created.secret not in str(row) and hashlib.sha256(created.secret.encode()).hexdigest() in row
    token = store.authenticate(created.secret)
    assert token is not None and token.endpoint == "fraud-model"
    assert token.allows("fraud-model") and not token.allows("other")
    assert store.list()[0].last_used_at == NOW
    assert store.authenticate(created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")) is None
    assert store.authenticate("mmt_short") is None and store.authenticate("") is None


def test_last_used_is_written_at_most_once_a_minute(mm: Monitoring) -> None:
    now = [NOW]
    store = ApiTokenStore(mm.engine, lambda: now[0])
    secret = store.create("ci", PROJECT_SCOPE).secret
    store.authenticate(secret)
    now[0] = NOW + timedelta(seconds=30)
    store.authenticate(secret)
    assert store.list()[0].last_used_at == NOW
    now[0] = NOW + timedelta(minutes=2)
    assert store.authenticate(secret) is not None and store.list()[0].last_used_at == now[0]


def test_revoked_tokens_are_refused_and_names_are_unique(mm: Monitoring) -> None:
    store = ApiTokenStore(mm.engine, fixed_clock(NOW))
    first = store.create("ci", PROJECT_SCOPE)
    second = store.create("batch", PROJECT_SCOPE)
    with pytest.raises(MonitoringError, match="a token named 'ci' exists already"):
        store.create("ci", PROJECT_SCOPE)
    with pytest.raises(MonitoringError, match="scope must be"):
        store.create("bad", "everything")
    assert store.revoke("ci").revoked_at == NOW
    assert store.revoke(str(second.token.id)).name == "batch"
    assert store.authenticate(first.secret) is None and store.authenticate(second.secret) is None
    with pytest.raises(UnknownTokenError, match="'nope'"):
        store.revoke("nope")


def test_mm_tokens_create_list_revoke(endpoint: ModelEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "create", "writer", "--endpoint", endpoint.name]) == 0
    out = capsys.readouterr().out
    secret = out.strip().splitlines()[-1]
    assert well_formed(secret) and "endpoint:fraud-model" in out
    assert main(["tokens", "create", "all", "--project"]) == 0
    capsys.readouterr()
    assert main(["tokens", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["scope"], r["revoked_at"]) for r in rows] == [
        ("writer", "endpoint:fraud-model", None),
        ("all", "project", None),
    ]
    assert secret not in json.dumps(rows)
    assert main(["tokens", "revoke", "writer"]) == 0
    assert "revoked token 1 'writer'" in capsys.readouterr().out
    with Monitoring() as mm:
        assert ApiTokenStore(mm.engine).authenticate(secret) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tokens", "create", "x", "--endpoint", "nobody"], "unknown endpoint 'nobody'"),
        (["tokens", "revoke", "nobody"], "no token has the id or name 'nobody'"),
    ],
)
def test_mm_tokens_mistakes_are_one_line_errors(
    argv: list[str], message: str, mm: Monitoring, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mm: ") and message in err and err.count("\n") == 1


def test_mm_tokens_create_needs_exactly_one_scope(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["tokens", "create", "x"])
    assert exit_.value.code == 2 and "--endpoint" in capsys.readouterr().err
