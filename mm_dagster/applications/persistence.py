"""Apply an app's `persistence` (core.persistence) to one window's results, reading the raw
statuses of the windows before it from the results store in one query."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from mm_dagster.core.persistence import RAW_STATUS, Persistence
from mm_dagster.core.report import Outputs
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.storage.results_store import ResultsStore


def apply_persistence(
    persistence: Persistence,
    app: str,
    window: Window,
    outputs: Mapping[str, Outputs],
    results: ResultsStore,
) -> dict[str, Outputs]:
    """`outputs` with each result's status replaced by its persistent status and the raw one
    kept in `extra_data["raw_status"]`."""
    if not outputs:
        return dict(outputs)
    period = window.end - window.start
    earlier = results.results(
        endpoint_id=list(outputs),
        app=app,
        start=window.start - (persistence.n - 1) * period,
        end=window.start,
    )
    history: dict[tuple[str, str], list[ResultStatusApp]] = defaultdict(list)
    for stored in earlier:  # ordered by window_start
        raw = stored.extra_data.get(RAW_STATUS, int(stored.status))
        history[(stored.endpoint_id, stored.name)].append(ResultStatusApp(raw))
    adjusted: dict[str, Outputs] = {}
    for endpoint_id, (endpoint_results, metrics) in outputs.items():
        kept = []
        for result in endpoint_results:
            status = persistence.status(result.status, history.get((endpoint_id, result.name), []))
            extra = {**result.extra_data, RAW_STATUS: int(result.status)}
            kept.append(replace(result, status=status, extra_data=extra))
        adjusted[endpoint_id] = (kept, metrics)
    return adjusted
