"""A deployment with many endpoints for the overview benchmark, built in bulk: one endpoint is
created through the API and copied row by row in SQL, results go through the results store's
bulk write, arrivals straight into the arrival log's table (what ingestion would have left)."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from bench.common import wide_frame
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.storage import database as db

APPS = ("histogram-data-drift", "data-quality", "model-performance", "operational-health")


def populate_overview(
    mm: Any, endpoints: int, now: datetime, windows: int = 3, base_period: int = 10
) -> None:
    template = mm.create_endpoint("model-00000", reference=wide_frame(500, numeric=5, categorical=1))
    with mm.engine.begin() as conn:
        row = dict(
            conn.execute(sa.select(db.endpoints).where(db.endpoints.c.id == template.id)).one()._mapping
        )
        copies = [
            {
                **row,
                "id": uuid.uuid4().hex,
                "name": f"model-{e:05d}",
                "last_request": now - timedelta(minutes=e % 60),
            }
            for e in range(1, endpoints)
        ]
        for start in range(0, len(copies), 1000):
            conn.execute(db.endpoints.insert(), copies[start : start + 1000])
    ids = [e.id for e in mm.list_endpoints()]
    rng = np.random.default_rng(0)
    arrivals = []
    for w in range(windows):
        window = Window.containing(now - timedelta(minutes=base_period * (windows - w)), base_period)
        for i, app in enumerate(APPS):
            statuses = rng.choice([0, 0, 0, 0, 1, 2], size=len(ids))
            outputs = {
                endpoint_id: (
                    [
                        ModelMonitoringApplicationResult(
                            f"result_{i}", float(rng.random()), ResultKindApp(i % 4), ResultStatusApp(int(s))
                        )
                    ],
                    [ModelMonitoringApplicationMetric(f"metric_{i}", float(rng.random()))],
                )
                for endpoint_id, s in zip(ids, statuses, strict=True)
            }
            mm.results.replace_window(app, window, outputs)
        arrivals += [
            {
                "slot_start": db.to_db_time(window.start),
                "endpoint_id": endpoint_id,
                "events": 1000,
                "errors": int(rng.integers(0, 20)),
                "first_event": db.to_db_time(window.start),
                "last_event": db.to_db_time(window.end - timedelta(seconds=1)),
                "written_at": db.to_db_time(window.end),
            }
            for endpoint_id in ids
        ]
    with mm.engine.begin() as conn:
        for start in range(0, len(arrivals), 5000):
            conn.execute(db.arrivals.insert(), arrivals[start : start + 5000])
