"""An app's report on one window, rebuilt from what the results store holds for it.

Each shard of a window stores its own endpoints' results; the app's results step then reads the
whole window back as one report, so its checks, metadata and alerts see every endpoint whatever
the number of shards. An endpoint (or segment) with a failure row failed in the newest analysis:
it counts as failed even though its earlier results are kept (`ResultsStore.replace_window`).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.report import AppWindowReport, Outputs
from mm_dagster.core.results import AppFailure, StoredMetric, StoredResult
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.core.windows import Window

DETAILED_FLAGGED = 20  # the most flagged results a report's metadata or check names (page links)
ResultKey = tuple[str, str, str]  # endpoint id, segment key, result name


def detail_keys(results: Sequence[StoredResult], limit: int = DETAILED_FLAGGED) -> set[ResultKey]:
    """The results whose extra_data a window report needs: per result name, the flagged ones at
    least as bad (status, then value) as its `limit`-th worst (ties included), the only ones its
    checks and metadata describe (`AppWindowReport.flagged` with a limit of at most `limit`)."""
    flagged: dict[str, list[StoredResult]] = {}
    for r in results:
        if r.status >= ResultStatusApp.potential_detection:
            flagged.setdefault(r.name, []).append(r)
    keys: set[ResultKey] = set()
    for rows in flagged.values():
        rows.sort(key=lambda r: (-int(r.status), -r.value))
        cut = rows[min(limit, len(rows)) - 1]
        keys |= {
            (r.endpoint_id, r.segment, r.name)
            for r in rows
            if (-int(r.status), -r.value) <= (-int(cut.status), -cut.value)
        }
    return keys


def stored_window_report(
    app: str,
    window: Window,
    results: Iterable[StoredResult],
    metrics: Iterable[StoredMetric],
    failures: Iterable[AppFailure],
    endpoint_names: Mapping[str, str],
    artifacts: Mapping[str, str] | None = None,
    extra_data: Mapping[ResultKey, dict[str, Any]] | None = None,
) -> AppWindowReport:
    """`app`'s report on `window` from its stored rows (every segment's); `artifacts`: key -> URI
    of what the app logged for the window; `extra_data`: results' extra_data by key, for rows
    read without it."""
    details = extra_data or {}
    failed = {(f.endpoint_id, f.segment): f.error for f in failures}
    outputs: dict[tuple[str, str], Outputs] = {}
    for r in results:
        if (r.endpoint_id, r.segment) not in failed:
            outputs.setdefault((r.endpoint_id, r.segment), ([], []))[0].append(
                ModelMonitoringApplicationResult.stored(
                    r.name,
                    r.value,
                    r.kind,
                    r.status,
                    details.get((r.endpoint_id, r.segment, r.name), r.extra_data),
                )
            )
    for m in metrics:
        if (m.endpoint_id, m.segment) not in failed:
            outputs.setdefault((m.endpoint_id, m.segment), ([], []))[1].append(
                ModelMonitoringApplicationMetric(m.name, m.value)
            )
    report = AppWindowReport(app=app, window=window, artifacts=dict(artifacts or {}))
    for (endpoint_id, segment), out in sorted(outputs.items()):
        if segment == ENDPOINT_WIDE:
            report.outputs[endpoint_id] = out
        else:
            report.segment_outputs.setdefault(endpoint_id, {})[segment] = out
    for (endpoint_id, segment), error in sorted(failed.items()):
        if segment == ENDPOINT_WIDE:
            report.failures[endpoint_id] = error
        else:
            report.segment_failures.setdefault(endpoint_id, {})[segment] = error
    seen = {e for e, _ in outputs} | {e for e, _ in failed}
    report.endpoint_names = {e: endpoint_names.get(e, e) for e in sorted(seen)}
    return report
