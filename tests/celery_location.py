"""A sharded code location on Dagster's celery executor, configured from deploy/celery.yaml, for a
`dagster-celery worker` to rebuild the job from. Its stores come from the environment (MM_*);
its steps go to the celery queue named by MM_TEST_CELERY_QUEUE (the tasks' default queue), so a
test's worker never takes another test's steps."""

import os
from pathlib import Path
from typing import Any

import yaml
from dagster import JobDefinition
from dagster_celery import celery_executor

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions

CELERY_YAML = Path(__file__).resolve().parents[1] / "deploy" / "celery.yaml"
SHARDS = 2


def executor_config() -> dict[str, Any]:
    """deploy/celery.yaml's executor config, on this test's own queue."""
    config: dict[str, Any] = yaml.safe_load(CELERY_YAML.read_text())["execution"]["config"]
    queue = os.environ.get("MM_TEST_CELERY_QUEUE", "dagster")
    config["config_source"] = {**config["config_source"], "task_default_queue": queue}
    return config


def celery_config() -> MonitoringConfig:
    return MonitoringConfig(
        apps=[HistogramDataDriftApplication()],
        partitions_start="2026-11-01",
        shards=SHARDS,
        executor=celery_executor.configured(executor_config()),
    )


def celery_job() -> JobDefinition:
    config = celery_config()
    return build_definitions(config).resolve_job_def(config.names.job)
