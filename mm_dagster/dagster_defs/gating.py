"""Monitoring results acting on the user's own Dagster assets and jobs (issue 11 §6).

- `build_result_gate`: a blocking asset check on a user asset (a scoring or promotion step, say):
  it fails, so the asset's downstream assets do not run, while the endpoint's latest result of an
  app (drift, quality, performance) is detected.
- `build_persistence_sensor`: requests a user job (retraining, say) once per episode in which a
  result is detected in k of the last n analysed windows (`core.gating`); the cursor remembers
  each endpoint's episode and run keys are derived from it, so a run is never requested twice.
"""

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    asset_check,
    sensor,
)

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.gating import decide
from mm_dagster.core.persistence import Persistence
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.windows import to_utc
from mm_dagster.dagster_defs.checks import markdown_table
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring

DRIFT_APP = "histogram-data-drift"


def _dagster_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def _monitoring(resources: Any, resource_key: str) -> Monitoring:
    resource = getattr(resources, resource_key)
    assert isinstance(resource, MonitoringResource)
    return resource.monitoring


def build_result_gate(
    asset: AssetsDefinition | AssetKey | str,
    *,
    endpoint: str,
    app: str = DRIFT_APP,
    results: Sequence[str] = ("general_drift", "feature_drift"),
    fail_on: ResultStatusApp = ResultStatusApp.detected,
    require_results: bool = False,
    name: str | None = None,
    resource_key: str = "mm",
) -> AssetChecksDefinition:
    """A blocking check on `asset`: it fails (ERROR; the asset's downstream assets in the run do
    not run) when the latest stored result named in `results` of `app` for `endpoint` (a name
    or id) has status `fail_on` or worse. With no such result stored it passes, unless
    `require_results`. Add it to `Definitions(asset_checks=[...])` with the monitoring resource."""
    wanted = set(results)
    if not wanted:
        raise ValueError("build_result_gate needs at least one result name")
    check_name = name or _dagster_name("mm_gate", endpoint, app)

    @asset_check(
        asset=asset,
        name=check_name,
        blocking=True,
        required_resource_keys={resource_key},
        description=(
            f"Blocks downstream assets while endpoint {endpoint!r}'s latest {'/'.join(sorted(wanted))} "
            f"result of app {app!r} is {fail_on.name} or worse."
        ),
    )
    def result_gate(context: AssetCheckExecutionContext) -> AssetCheckResult:
        monitoring = _monitoring(context.resources, resource_key)
        found = monitoring.endpoints.find(endpoint)
        if found is None:
            return AssetCheckResult(
                passed=False, metadata={"reason": f"unknown endpoint {endpoint!r}", "app": app}
            )
        latest = [r for r in monitoring.results.latest_results(found.id, app) if r.name in wanted]
        blocking = [r for r in latest if r.status >= fail_on]
        metadata: dict[str, Any] = {"endpoint": found.name, "app": app, "results_found": len(latest)}
        if latest:
            metadata["latest"] = MetadataValue.md(
                markdown_table(
                    ["result", "window", "status", "value"],
                    [
                        (r.name, f"{r.window_start:%Y-%m-%d %H:%M}", r.status.name, f"{r.value:.4f}")
                        for r in latest
                    ],
                )
            )
        if not latest:
            metadata["reason"] = "no result stored yet"
            return AssetCheckResult(passed=not require_results, metadata=metadata)
        if blocking:
            metadata["reason"] = ", ".join(f"{r.name} {r.status.name}" for r in blocking)
        return AssetCheckResult(passed=not blocking, metadata=metadata)

    return result_gate


def _load_cursor(raw: str | None) -> dict[str, datetime]:
    return {endpoint_id: to_utc(since) for endpoint_id, since in json.loads(raw or "{}").items()}


def build_persistence_sensor(
    *,
    name: str,
    job_name: str,
    k: int,
    n: int,
    app: str = DRIFT_APP,
    result: str = "general_drift",
    endpoints: Sequence[str] | None = None,
    horizon: timedelta = timedelta(days=1),
    minimum_interval_seconds: int = 60,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    resource_key: str = "mm",
    clock: Clock = utcnow,
) -> SensorDefinition:
    """A sensor requesting the job `job_name` once per episode where `result` of `app` is detected in at least
    `k` of the last `n` analysed windows of an endpoint (`endpoints`: names or ids; None: all).
    Results are read over the last `horizon`. An episode ends when the result no longer persists;
    the next one requests the job again. Run key `<name>:<endpoint id>:<episode start>`; tags
    `mm/endpoint`, `mm/endpoint_id`, `mm/app`, `mm/result`, `mm/episode_start` tell the job why."""
    rule = Persistence(k, n)

    @sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        required_resource_keys={resource_key},
        description=(
            f"Requests {job_name} once per episode where {app}/{result} is detected in {k} of the "
            f"last {n} analysed windows of an endpoint."
        ),
    )
    def persistence_sensor(context: SensorEvaluationContext) -> SensorResult:
        monitoring = _monitoring(context.resources, resource_key)
        names = monitoring.endpoints.names()
        ids: list[str] | None = None
        if endpoints is not None:
            known = {name_: id_ for id_, name_ in names.items()} | {id_: id_ for id_ in names}
            unknown = [e for e in endpoints if e not in known]
            if unknown:
                context.log.warning(f"{name}: unknown endpoints {unknown} are not watched")
            ids = [known[e] for e in endpoints if e in known]
        history: dict[str, list[tuple[datetime, bool]]] = {}
        for r in monitoring.results.results(endpoint_id=ids, app=app, name=result, start=clock() - horizon):
            history.setdefault(r.endpoint_id, []).append(
                (r.window_start, r.status >= ResultStatusApp.detected)
            )
        remembered = _load_cursor(context.cursor)
        cursor: dict[str, str] = {}
        requests = []
        for endpoint_id in sorted(set(history) | set(remembered)):
            decision = decide(remembered.get(endpoint_id), history.get(endpoint_id, []), rule)
            if decision.active_since is None:
                continue
            since = decision.active_since.isoformat()
            cursor[endpoint_id] = since
            if decision.act:
                context.log.info(
                    f"{app}/{result} detected in {k} of the last {n} windows of "
                    f"{names.get(endpoint_id, endpoint_id)} since {since}: requesting {job_name}"
                )
                requests.append(
                    RunRequest(
                        run_key=f"{name}:{endpoint_id}:{since}",
                        tags={
                            "mm/endpoint": names.get(endpoint_id, endpoint_id),
                            "mm/endpoint_id": endpoint_id,
                            "mm/app": app,
                            "mm/result": result,
                            "mm/episode_start": since,
                        },
                    )
                )
        context.log.info(
            f"{len(history)} endpoints with {app}/{result} results, {len(cursor)} in an episode, "
            f"{len(requests)} runs requested"
        )
        return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return persistence_sensor
