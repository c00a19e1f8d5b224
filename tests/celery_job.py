"""A two-step job on Dagster's celery executor, importable by a `dagster-celery worker` (it
reconstructs the job from this module). Its steps go to the queue named by MM_TEST_CELERY_QUEUE,
so a test's worker never takes another test's steps."""

import os

from dagster import job, op
from dagster_celery import celery_executor

QUEUE = os.environ.get("MM_TEST_CELERY_QUEUE", "dagster")
ON_QUEUE = {"dagster-celery/queue": QUEUE}


@op(tags=ON_QUEUE)
def first_pid() -> int:
    return os.getpid()


@op(tags=ON_QUEUE)
def both_pids(first: int) -> list[int]:
    return [first, os.getpid()]


@job(executor_def=celery_executor)
def celery_probe() -> None:
    both_pids(first_pid())
