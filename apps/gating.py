"""Monitoring gating the user's own assets and jobs (the demo's `fraud-detector`).

- `fraud_candidate_model` → `fraud_promotion`: a blocking check on the candidate
  (`fraud_detector_not_drifting`) fails while the endpoint's latest drift result is detected,
  so the promotion does not run (`fraud_promotion_job`).
- `fraud_retrain_job`: requested by `fraud_retrain_on_drift` once per episode where
  `feature_drift` is detected in 3 of the last 4 analysed windows.
"""

from dagster import (
    AssetExecutionContext,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
)

from mm_dagster.dagster_defs import build_persistence_sensor, build_result_gate
from mm_dagster.dagster_defs.resources import MonitoringResource

ENDPOINT = "fraud-detector"
GROUP = "fraud_model"


@asset(group_name=GROUP, required_resource_keys={"mm"}, kinds={"python"})
def fraud_candidate_model(context: AssetExecutionContext) -> MaterializeResult[None]:
    """The model version serving `fraud-detector`, as the candidate to promote."""
    resource = context.resources.mm
    assert isinstance(resource, MonitoringResource)
    endpoint = resource.monitoring.endpoints.find(ENDPOINT)
    version = endpoint.model_version if endpoint else "none"
    return MaterializeResult(metadata={"endpoint": ENDPOINT, "model_version": version})


@asset(group_name=GROUP, deps=[fraud_candidate_model], kinds={"python"})
def fraud_promotion(context: AssetExecutionContext) -> MaterializeResult[None]:
    """Promotes the candidate (a toy: it records the promotion) — only if the gate passed."""
    context.log.info(f"promoting the {ENDPOINT} candidate")
    return MaterializeResult(metadata={"promoted": True})


@asset(group_name=GROUP, kinds={"python"})
def fraud_retrained_model(context: AssetExecutionContext) -> MaterializeResult[None]:
    """Retrains the fraud model (a toy: it records why it was asked to, from the run's tags)."""
    tags = context.run.tags
    return MaterializeResult(
        metadata={
            "endpoint": tags.get("mm/endpoint", ENDPOINT),
            "episode_start": tags.get("mm/episode_start", "manual"),
        }
    )


fraud_gate = build_result_gate(fraud_candidate_model, endpoint=ENDPOINT, name="fraud_detector_not_drifting")
fraud_promotion_job = define_asset_job(
    "fraud_promotion_job",
    selection=[fraud_candidate_model, fraud_promotion],
    description="Promotes the fraud model's candidate unless fraud-detector is drifting (blocking check).",
)
fraud_retrain_job = define_asset_job(
    "fraud_retrain_job",
    selection=[fraud_retrained_model],
    description="Retrains the fraud model (requested by fraud_retrain_on_drift once per drift episode).",
)
fraud_retrain_on_drift = build_persistence_sensor(
    name="fraud_retrain_on_drift",
    job_name="fraud_retrain_job",
    result="feature_drift",
    k=3,
    n=4,
    endpoints=[ENDPOINT],
    default_status=DefaultSensorStatus.RUNNING,
)

gating_defs = Definitions(
    assets=[fraud_candidate_model, fraud_promotion, fraud_retrained_model],
    asset_checks=[fraud_gate],
    jobs=[fraud_promotion_job, fraud_retrain_job],
    sensors=[fraud_retrain_on_drift],
)
