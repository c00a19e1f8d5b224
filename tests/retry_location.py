"""The code location of the run-retry test (tests/test_run_retries.py): the distributed test's
apps, alerts and windows (tests/distributed_config.py) plus a paced app, K = 4 shards on the
multiprocess executor (two step processes at once). Its stores come from the environment
(MM_HOME, MM_DATABASE_URL, ...). `python -m tests.retry_location WINDOW_KEY...` analyses the
windows in one process (K = 1, in-process executor) instead: the run the test compares with."""

import sys
import time
from dataclasses import replace

from dagster import Definitions, ExecutorDefinition, multiprocess_executor

from mm_dagster.applications import ModelMonitoringApplicationBase, MonitoringApplicationContext
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource

from .distributed_config import BASE_PERIOD, distributed_config
from .single_process_run import analyse_in_one_process

SECONDS_PER_ENDPOINT = 0.15


class PacedRows(ModelMonitoringApplicationBase):
    """Counts an endpoint's rows, taking SECONDS_PER_ENDPOINT to do it: a shard step lasts long
    enough (over a second) for the test to kill its process while it runs."""

    NAME = "paced-rows"

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        time.sleep(SECONDS_PER_ENDPOINT)
        return {"rows": float(len(monitoring_context.sample_df))}


def retry_config(executor: ExecutorDefinition | None, shards: int) -> MonitoringConfig:
    config = distributed_config(executor, shards)
    return replace(config, apps=[*config.apps, PacedRows()])


def retry_definitions() -> Definitions:
    # Step processes fork from a server that imported the code once, as the README advises.
    forked = {"forkserver": {"preload_modules": ["mm_dagster.dagster_defs", "tests.retry_location"]}}
    executor = multiprocess_executor.configured({"max_concurrent": 2, "start_method": forked})
    defs = build_definitions(retry_config(executor, 4), resource=MonitoringResource(base_period=BASE_PERIOD))
    # Without the maintenance schedule (as tests/distributed_location.py): compaction would
    # rewrite the event files the single-process run reads.
    return Definitions(assets=defs.assets, jobs=defs.jobs, sensors=defs.sensors, resources=defs.resources)


defs = retry_definitions()

if __name__ == "__main__":
    analyse_in_one_process(retry_config(executor=None, shards=1), sys.argv[1:])
