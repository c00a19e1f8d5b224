"""Two runs of one window at once (a backfill beside the controller's run) both succeed: alert
events, entity states, the outbox and results are written idempotently. Real concurrency: threads
with an engine each, on one SQLite file and on the loopback PostgreSQL and MariaDB (skipped when
absent)."""

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.alerts import LogChannel, data_drift_detected
from mm_dagster.alerts.service import AlertService
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric
from mm_dagster.core.report import AppWindowReport
from mm_dagster.storage import database as db
from mm_dagster.storage.alert_store import AlertStore
from mm_dagster.storage.results_store import ResultsStore

from .test_alert_delivery import DETECTED, Clock, report, window

SERVERS = {
    "postgresql": os.environ.get("MM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("MM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
RUNS = 4  # concurrent runs of each window
WINDOWS = 4
ENDPOINTS = 60


@pytest.fixture(params=sorted(SERVERS))
def server_databases(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Makes fresh databases on a loopback database server (their URLs), dropped afterwards."""
    server = sa.engine.make_url(SERVERS[request.param])
    admin_database = "postgres" if request.param == "postgresql" else None
    try:
        admin = sa.create_engine(server.set(database=admin_database), isolation_level="AUTOCOMMIT")
        with admin.connect():
            pass
    except Exception as exc:
        pytest.skip(f"{request.param} is not reachable at {server}: {type(exc).__name__}: {exc}"[:300])
    names: list[str] = []

    def fresh() -> str:
        names.append(f"mm_concurrent_{uuid.uuid4().hex[:12]}")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {names[-1]}"))
        return server.set(database=names[-1]).render_as_string(hide_password=False)

    force = " WITH (FORCE)" if request.param == "postgresql" else ""
    try:
        yield fresh
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


def window_report(i: int) -> AppWindowReport:
    r = report(window(i), {f"{e:032x}": DETECTED for e in range(ENDPOINTS)})
    for _results, metrics in r.outputs.values():
        metrics.append(ModelMonitoringApplicationMetric("rows", float(i)))
    r.failures = {f"{e:032x}": "boom" for e in range(ENDPOINTS, ENDPOINTS + 5)}
    return r


def run_concurrently(url: str, work: Callable[[Engine, int], None]) -> list[BaseException]:
    """`work(engine, run)` in `RUNS` threads, each with its own engine, started together."""
    engines = [db.create_engine(url) for _ in range(RUNS)]
    barrier = threading.Barrier(RUNS)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(engines[i], i)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RUNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for engine in engines:
        engine.dispose()
    return errors


def concurrent_runs_of_the_same_windows(url: str) -> None:
    alerts = [data_drift_detected([LogChannel()], cooldown=0), data_drift_detected([LogChannel()], name="b")]
    reports = [window_report(i) for i in range(WINDOWS)]

    def work(engine: Engine, run: int) -> None:
        clock = Clock()
        service = AlertService(AlertStore(engine), alerts, check_channels=[LogChannel()], clock=clock)
        results = ResultsStore(engine, clock)
        for i, r in enumerate(reports):
            results.replace_window(r.app, r.window, r.outputs, r.failures)
            service.record_report(r)
            service.enqueue_check_failure("freshness", f"window-{i}", "WARN", {"run": run})

    errors = run_concurrently(url, work)
    assert errors == [], [f"{type(e).__name__}: {e}"[:300] for e in errors]
    engine = db.create_engine(url)
    try:
        store = AlertStore(engine)
        events = store.recent_events(100_000)
        assert len(events) == WINDOWS * (ENDPOINTS + 5)
        assert len({(e.kind, e.entity, e.window_start) for e in events}) == len(events)
        results = ResultsStore(engine)
        assert len(results.results()) == WINDOWS * ENDPOINTS
        assert len(results.metrics()) == WINDOWS * ENDPOINTS
        assert len(results.failures()) == WINDOWS * 5
        checks = [n for n in store.notifications() if n.alert == "dagster-checks"]
        assert len(checks) == WINDOWS
    finally:
        engine.dispose()


def test_concurrent_runs_of_one_window_on_sqlite(tmp_path: Path) -> None:
    concurrent_runs_of_the_same_windows(f"sqlite:///{tmp_path / 'mm.db'}")


@pytest.mark.slow
@pytest.mark.scale
def test_concurrent_runs_of_one_window_on_a_database_server(server_databases: Callable[[], str]) -> None:
    for _ in range(3):  # a race: several rounds, each on a fresh database
        concurrent_runs_of_the_same_windows(server_databases())
