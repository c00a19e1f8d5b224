"""What a deployment's database holds of its analyses, without what differs between two runs of
the same analysis (row ids, times, run ids): two deployments that analysed the same events the
same way have equal snapshots, whatever their number of shards, executor or hosts."""

import re
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

ANALYSIS_TABLES = (
    "mm_results",
    "mm_metrics",
    "mm_result_heads",
    "mm_metric_heads",
    "mm_app_failures",
    "mm_window_histograms",
    "mm_alert_events",
    "mm_alert_states",
    "mm_notifications",
)
VOLATILE = {
    "id",
    "updated_at",
    "failed_at",
    "created_at",
    "next_attempt_at",
    "claimed_until",
    "last_attempt_at",
    "sent_at",
    "event_id",
    "last_event_id",
    "run_id",
    "uid",
    "claim",
    "activated_at",
    "last_event_at",
    "last_notified_at",
}


# Run ids inside texts (a check notification's message names the run that raised it).
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _stable(value: Any, leave_out: Collection[str] = ()) -> Any:
    if isinstance(value, str):
        return RUN_ID.sub("<run id>", value)
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in VOLATILE and k not in leave_out}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def analysis_snapshot(database_url: str, leave_out: Collection[str] = ()) -> dict[str, list[str]]:
    """Every analysis table's rows, volatile columns (and the columns `leave_out` names) left
    out, as sorted canonical strings."""
    engine = sa.create_engine(database_url)
    snapshot: dict[str, list[str]] = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine, only=list(ANALYSIS_TABLES))
        with engine.connect() as conn:
            for name in ANALYSIS_TABLES:
                table = metadata.tables[name]
                rows = [_stable(dict(r._mapping), leave_out) for r in conn.execute(sa.select(table))]
                snapshot[name] = sorted(repr(sorted(r.items())) for r in rows)
    finally:
        engine.dispose()
    return snapshot
