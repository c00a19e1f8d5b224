"""A code location with sharded windows, loadable in other processes (the multiprocess
executor's step processes rebuild the job from here). Its stores come from the environment
(MM_HOME, MM_DATABASE_URL, ...); SHARDS sets the number of shards (default 4)."""

import os

from dagster import Definitions, JobDefinition, multiprocess_executor

from mm_dagster.alerts import LogChannel, app_failed, data_drift_detected
from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions


class FailsOnSecondEndpoints(ModelMonitoringApplicationBase):
    """Fails on endpoints whose name ends in an odd digit: failures are part of what must not
    depend on the number of shards."""

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        if int(monitoring_context.endpoint_name[-1]) % 2:
            raise RuntimeError(f"{monitoring_context.endpoint_name} is odd")
        return {"rows": float(len(monitoring_context.sample_df))}


def sharded_config(shards: int, executor: bool = True) -> MonitoringConfig:
    return MonitoringConfig(
        apps=[HistogramDataDriftApplication(), FailsOnSecondEndpoints()],
        partitions_start="2026-11-01",
        shards=shards,
        executor=multiprocess_executor.configured({"max_concurrent": 2}) if executor else None,
        alerts=[data_drift_detected([LogChannel()]), app_failed([LogChannel()])],
        check_notifications=[LogChannel()],
    )


def sharded_definitions() -> Definitions:
    return build_definitions(sharded_config(int(os.environ.get("SHARDS", "4"))))


def sharded_job() -> JobDefinition:
    return sharded_definitions().resolve_job_def(sharded_config(1).names.job)


defs = sharded_definitions()
