"""`mm results` and `mm metrics`: the latest value per series, or every window's value in a
`--since`/`--until` range, filtered by endpoint, app, name and segment."""

import argparse
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mm_dagster.cli.errors import UsageError
from mm_dagster.cli.output import Column, print_rows
from mm_dagster.cli.times import time_range
from mm_dagster.core.results import StoredMetric, StoredResult
from mm_dagster.core.segments import segment_label
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage.series_names import OutputKind, stored_series

RESULT_COLUMNS = (
    Column("window_start", "window (UTC)"),
    Column("endpoint", "endpoint"),
    Column("app", "app"),
    Column("name", "result"),
    Column("segment", "segment"),
    Column("status", "status"),
    Column("value", "value"),
)
METRIC_COLUMNS = (
    Column("window_start", "window (UTC)"),
    Column("endpoint", "endpoint"),
    Column("app", "app"),
    Column("name", "metric"),
    Column("segment", "segment"),
    Column("value", "value"),
)


def _check_filters(
    series: set[tuple[str, str, str]], args: argparse.Namespace, kind: OutputKind, where: str
) -> None:
    """Unknown app, name or segment filters are errors (they would list nothing, silently)."""
    apps = sorted({app for app, _, _ in series})
    if args.app is not None and args.app not in apps:
        raise UsageError(
            f"--app {args.app!r}: no {kind}s stored for that app{where} (apps with {kind}s: {_few(apps)})"
        )
    in_app = [s for s in series if args.app is None or s[0] == args.app]
    names = sorted({name for _, name, _ in in_app})
    if args.name is not None and args.name not in names:
        raise UsageError(f"--name {args.name!r}: no {kind} has that name{where} ({kind}s: {_few(names)})")
    labels = sorted({segment_label(seg) for _, name, seg in in_app if args.name is None or name == args.name})
    if args.segment is not None and args.segment not in labels:
        raise UsageError(f"--segment {args.segment!r}: no such segment{where} (segments: {_few(labels)})")


def _few(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(v) if v == "" else v for v in values[:limit]) or "none"
    return f"{shown}, ... ({len(values)} in all)" if len(values) > limit else shown


def _row(item: StoredResult | StoredMetric, names: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "endpoint": names.get(item.endpoint_id, item.endpoint_id),
        "endpoint_id": item.endpoint_id,
        "app": item.app,
        "name": item.name,
        "segment": segment_label(item.segment),
        "window_start": item.window_start,
        "window_end": item.window_end,
        "value": item.value,
    }
    if isinstance(item, StoredResult):
        row["status"] = item.status.name
        row["kind"] = item.kind.name
    return row


def list_series(args: argparse.Namespace, home: str, kind: OutputKind) -> int:
    with Monitoring(home=home) as mm:
        endpoint_id = mm.get_endpoint(args.endpoint).id if args.endpoint else None
        where = f" for endpoint {args.endpoint!r}" if args.endpoint else ""
        _check_filters(stored_series(mm.engine, kind, endpoint_id), args, kind, where)
        selected = time_range(args.since, args.until, mm.clock())
        items = _fetch(mm, kind, endpoint_id, args.app, args.name, selected)
        names = mm.endpoints.names()
    rows = [
        _row(item, names)
        for item in items
        if (args.name is None or item.name == args.name)
        and (args.segment is None or segment_label(item.segment) == args.segment)
    ]
    if selected is None:
        rows.sort(key=lambda r: (r["endpoint"], r["app"], r["name"], r["segment"]))
    else:
        rows.sort(key=lambda r: (r["window_start"], r["endpoint"], r["app"], r["name"], r["segment"]))
    columns = RESULT_COLUMNS if kind == "result" else METRIC_COLUMNS
    print_rows(rows, columns, args.json, f"{kind}s")
    return 0


def _fetch(
    mm: Monitoring,
    kind: OutputKind,
    endpoint_id: str | None,
    app: str | None,
    name: str | None,
    selected: tuple[datetime, datetime] | None,
) -> Sequence[StoredResult | StoredMetric]:
    if selected is None:
        if kind == "result":
            return mm.results.latest_results(endpoint_id, app, segment=None)
        return mm.results.latest_metrics(endpoint_id, app, segment=None)
    start, end = selected
    if kind == "result":
        return mm.results.results(endpoint_id, app, name, start, end, segment=None)
    return mm.results.metrics(endpoint_id, app, name, start, end, segment=None)
