"""Storing one window of the default app for 10,000 endpoints: `ResultsStore.replace_window`.

Each endpoint has the drift app's outputs (3 results with per-feature extra data, 3 metrics)
and 21 feature histograms. Times the first write of the window and a re-run (which replaces
it), and counts the SQL statements each sends, on SQLite and on PostgreSQL (skipped when the
loopback server is not there: MM_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Baseline in the same run: one `executemany` INSERT of the same result rows into a scratch table.
"""

import os
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

warnings.filterwarnings("ignore")

from mm_dagster.core.histograms import FeatureHistogram  # noqa: E402
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult  # noqa: E402
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp  # noqa: E402
from mm_dagster.core.windows import Window  # noqa: E402
from mm_dagster.storage import database as db  # noqa: E402
from mm_dagster.storage.results_store import ResultsStore  # noqa: E402

ENDPOINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
FEATURES = 21
POSTGRES = os.environ.get("MM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def window_outputs(ids: list[str]) -> tuple[dict, dict]:
    features = {f"n{i}": {"tvd": 0.01 * i, "hellinger": 0.02, "kld": 0.003} for i in range(FEATURES)}
    outputs, histograms = {}, {}
    for e in ids:
        results = [
            ModelMonitoringApplicationResult(
                name, 0.1, ResultKindApp.data_drift, ResultStatusApp.no_detection, {"features": features}
            )
            for name in ("general_drift", "feature_drift", "prediction_drift")
        ]
        metrics = [
            ModelMonitoringApplicationMetric(n, 0.1) for n in ("hellinger_mean", "kld_mean", "tvd_mean")
        ]
        outputs[e] = (results, metrics)
        histograms[e] = {
            "": [
                FeatureHistogram(
                    f"n{i}", "numeric", [f"{b}" for b in range(22)], list(range(22)), list(range(22)), 231
                )
                for i in range(FEATURES)
            ]
        }
    return outputs, histograms


def measure(url: str) -> None:
    engine = db.create_engine(url)
    store = ResultsStore(engine)
    window = Window.containing(datetime.now(UTC) - timedelta(days=400, minutes=uuid.uuid4().int % 10_000), 10)
    ids = [uuid.uuid4().hex for _ in range(ENDPOINTS)]
    outputs, histograms = window_outputs(ids)
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def write() -> float:
        statements.clear()
        started = time.perf_counter()
        store.replace_window("bench", window, outputs, histograms=histograms)
        return time.perf_counter() - started

    first, first_statements = write(), len(statements)
    again, again_statements = write(), len(statements)
    scratch = sa.Table(
        f"mm_bench_{uuid.uuid4().hex[:8]}", sa.MetaData(), *[c.copy() for c in db.results.columns]
    )
    scratch.create(engine)
    rows = [
        {
            "endpoint_id": e,
            "app": "bench",
            "name": r.name,
            "segment": "",
            "window_start": window.start.replace(tzinfo=None),
            "window_end": window.end.replace(tzinfo=None),
            "kind": r.kind.value,
            "status": int(r.status),
            "value": r.value,
            "extra_data": r.extra_data,
            "model_version": None,
            "reference_version": None,
            "updated_at": window.start.replace(tzinfo=None),
        }
        for e, (results, _) in outputs.items()
        for r in results
    ]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(scratch.insert(), rows)
    baseline = time.perf_counter() - started
    scratch.drop(engine)
    with engine.begin() as conn:
        for table in (db.results, db.metrics, db.window_histograms, *(h for h, _ in db.HEADS)):
            conn.execute(table.delete().where(table.c.app == "bench"))
    engine.dispose()
    print(
        f"{engine.dialect.name:<12}{first:>10.2f}{first_statements:>8}{again:>10.2f}{again_statements:>8}"
        f"{baseline:>12.2f}{first / baseline:>10.1f}x"
    )


def main() -> None:
    print(f"replace_window of {ENDPOINTS:,} endpoints x (3 results + 3 metrics + {FEATURES} histograms)")
    print(
        f"{'database':<12}{'first s':>10}{'stmts':>8}{'rerun s':>10}{'stmts':>8}"
        f"{'1 insert s':>12}{'ratio':>11}"
    )
    with tempfile.TemporaryDirectory() as home:
        measure(f"sqlite:///{home}/mm.db")
    try:
        sa.create_engine(POSTGRES).connect().close()
    except Exception as exc:
        print(f"postgresql  skipped: {type(exc).__name__}")
        return
    measure(POSTGRES)


if __name__ == "__main__":
    main()
