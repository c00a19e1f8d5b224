"""An app's report on one window, rebuilt from what the results store holds for it.

Each shard of a window stores its own endpoints' results; the app's results step then reads the
whole window back as one report, so its checks, metadata and alerts see every endpoint whatever
the number of shards. An endpoint (or segment) with a failure row failed in the newest analysis:
it counts as failed even though its earlier results are kept (`ResultsStore.replace_window`).
"""

from collections.abc import Iterable, Mapping

from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.report import AppWindowReport, Outputs
from mm_dagster.core.results import AppFailure, StoredMetric, StoredResult
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.core.windows import Window


def stored_window_report(
    app: str,
    window: Window,
    results: Iterable[StoredResult],
    metrics: Iterable[StoredMetric],
    failures: Iterable[AppFailure],
    endpoint_names: Mapping[str, str],
    artifacts: Mapping[str, str] | None = None,
) -> AppWindowReport:
    """`app`'s report on `window` from its stored rows (every segment's); `artifacts`: key -> URI
    of what the app logged for the window."""
    failed = {(f.endpoint_id, f.segment): f.error for f in failures}
    outputs: dict[tuple[str, str], Outputs] = {}
    for r in results:
        if (r.endpoint_id, r.segment) not in failed:
            outputs.setdefault((r.endpoint_id, r.segment), ([], []))[0].append(
                ModelMonitoringApplicationResult(r.name, r.value, r.kind, r.status, r.extra_data)
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
