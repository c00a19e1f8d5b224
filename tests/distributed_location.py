"""The code location of the distributed test (tests/test_distributed.py): K = 4 shards on
dagster-celery's executor. Its stores come from the environment (MM_DATABASE_URL,
MM_EVENTS_ROOT, ...) like a deployment's; DAGSTER_CELERY_BROKER_URL (read by deploy/celery.yaml)
names the broker and MM_TEST_CELERY_QUEUE the test run's queue (the executor's config is
deploy/celery.yaml's, tests/celery_location.executor_config)."""

from dagster import Definitions
from dagster_celery import celery_executor

from mm_dagster.dagster_defs import build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource

from .celery_location import executor_config
from .distributed_config import BASE_PERIOD, distributed_config


def distributed_definitions() -> Definitions:
    executor = celery_executor.configured(executor_config())
    defs = build_definitions(
        distributed_config(executor), resource=MonitoringResource(base_period=BASE_PERIOD)
    )
    # Without the hourly maintenance schedule: compaction at :17 would rewrite the event files
    # that the single-process run reads through a copy of the database taken before any ran.
    return Definitions(assets=defs.assets, jobs=defs.jobs, sensors=defs.sensors, resources=defs.resources)


defs = distributed_definitions()
