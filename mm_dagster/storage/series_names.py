"""Which series of results and metrics are stored: (app, name, segment) per series, read from the
heads tables (one row per series, so the answer does not grow with history)."""

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.storage import database as db

OutputKind = Literal["result", "metric"]


def stored_series(
    engine: Engine, kind: OutputKind, endpoint_id: str | None = None
) -> set[tuple[str, str, str]]:
    """(app, name, segment key) of every stored result (`kind="result"`) or metric series, of
    one endpoint or of all."""
    heads = db.result_heads if kind == "result" else db.metric_heads
    query = sa.select(heads.c.app, heads.c.name, heads.c.segment).distinct()
    if endpoint_id is not None:
        query = query.where(heads.c.endpoint_id == endpoint_id)
    with engine.connect() as conn:
        return {(app, name, segment) for app, name, segment in conn.execute(query)}
