"""What the distributed test (tests/test_distributed.py) deploys: its apps, alerts and windows.
tests/distributed_location.py is its code location, tests/single_process_run.py the run it is
compared with."""

from datetime import timedelta

from dagster import ExecutorDefinition

from mm_dagster.alerts import LogChannel, app_failed, data_drift_detected
from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.dagster_defs import MonitoringConfig

QUEUE_VARIABLE = "MM_TEST_CELERY_QUEUE"  # the queue tests.celery_location.executor_config sends to
BASE_PERIOD = 2
SHARDS = 4


class RowsArtifactOrFailure(ModelMonitoringApplicationBase):
    """Stores an artifact per endpoint (the artifacts store must be the object store too) and
    fails on endpoints whose name ends in an odd digit (failures must not depend on the shards)."""

    NAME = "rows-artifact"

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        ctx = monitoring_context
        if int(ctx.endpoint_name[-1]) % 2:
            raise RuntimeError(f"{ctx.endpoint_name} is odd")
        ctx.log_artifact("rows", body=f"{ctx.endpoint_name}: {len(ctx.sample_df)} rows")
        return {"rows": float(len(ctx.sample_df))}


def distributed_config(executor: ExecutorDefinition | None, shards: int = SHARDS) -> MonitoringConfig:
    """The apps, alerts and windows of the test; `executor=None` and `shards=1` make the
    single-process deployment it is compared with."""
    return MonitoringConfig(
        apps=[HistogramDataDriftApplication(), RowsArtifactOrFailure()],
        base_period=BASE_PERIOD,
        late_data_horizon=timedelta(hours=1),
        shards=shards,
        executor=executor,
        alerts=[data_drift_detected([LogChannel()]), app_failed([LogChannel()])],
        check_notifications=[LogChannel()],
    )
