"""What the deployment tests (tests/test_distributed.py, tests/test_run_retries.py) share: the
instance file, closed windows, a workspace for a test code location, and what the Dagster
instance tells of the monitoring runs and their steps."""

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunRecord

from mm_dagster.core.windows import Window

from .distributed_cluster import BIN
from .distributed_config import BASE_PERIOD

ROOT = Path(__file__).parent.parent
INSTANCE_YAML = ROOT / "deploy" / "dagster.yaml"
SHARD_STEP = "mm__analysis__shard_"
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# Columns of a notification that say how its delivery went (the daemon's delivery sensor sends
# them; a single-process run has no sensor): not part of what the analysis decided.
DELIVERY_COLUMNS = ("status", "attempts", "last_error")


def closed_windows(now: datetime, count: int) -> list[Window]:
    """The `count` newest windows the controller treats as closed (past allowed_lateness)."""
    newest = Window.containing(now - timedelta(minutes=2 * BASE_PERIOD + 1), BASE_PERIOD)
    step = timedelta(minutes=BASE_PERIOD)
    return [Window(newest.start - step * i, newest.end - step * i) for i in reversed(range(count))]


def deployment_env(tmp_path: Path, dagster_url: sa.URL, results_url: sa.URL) -> dict[str, str]:
    """The environment of a deployment under `tmp_path`: an empty MM_HOME, a DAGSTER_HOME holding
    deploy/dagster.yaml on the instance database `dagster_url`, results on `results_url`, this
    checkout importable and its venv's commands first on the PATH."""
    for directory in ("mm_home", "dagster_home", "logs"):
        (tmp_path / directory).mkdir()
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster_home" / "dagster.yaml")
    # dagster-postgres is written for psycopg2 (SQLAlchemy 2.1's default driver is psycopg 3).
    instance_url = dagster_url.set(drivername="postgresql+psycopg2")
    return {
        **os.environ,
        "MM_HOME": str(tmp_path / "mm_home"),
        "MM_DATABASE_URL": results_url.render_as_string(hide_password=False),
        "MM_SPOOL_DIR": str(tmp_path / "spool"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "DAGSTER_PG_URL": instance_url.render_as_string(hide_password=False),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PATH": os.pathsep.join(filter(None, [str(BIN), os.environ.get("PATH")])),
    }


def workspace_yaml(path: Path, module: str, location: str) -> Path:
    path.write_text(
        "load_from:\n"
        "  - python_module:\n"
        f"      module_name: {module}\n"
        f"      working_directory: {ROOT}\n"
        f"      location_name: {location}\n"
    )
    return path


def monitoring_runs(instance: DagsterInstance) -> list[RunRecord]:
    """The controller's runs and their retries (which keep its tags)."""
    return [r for r in instance.get_run_records() if "mm/window" in r.dagster_run.tags]


def run_statuses(instance: DagsterInstance) -> str:
    runs = [r.dagster_run for r in monitoring_runs(instance)]
    return "\n".join(
        f"  {run.run_id[:8]} {run.tags.get('dagster/run_key')} {run.status.value}"
        f" retry={run.tags.get('dagster/retry_number', '0')}"
        for run in runs
    )


@dataclass(frozen=True)
class StepStart:
    run_id: str
    step_key: str
    pid: int


def step_events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list[StepStart]:
    records = instance.get_records_for_run(run_id, of_type=kind).records
    events = [r.event_log_entry.dagster_event for r in records]
    return [StepStart(run_id, e.step_key or "", e.pid or 0) for e in events if e is not None]


def running_shard_step(instance: DagsterInstance) -> StepStart | None:
    """A shard step that started and has not ended yet, if any."""
    for record in monitoring_runs(instance):
        run_id = record.dagster_run.run_id
        ended = {
            e.step_key
            for kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
            for e in step_events(instance, run_id, kind)
        }
        for start in step_events(instance, run_id, DagsterEventType.STEP_START):
            if start.step_key.startswith(SHARD_STEP) and start.step_key not in ended:
                return start
    return None


def duplicates(url: str, table: str, columns: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = f"SELECT {columns}, count(*) FROM {table} GROUP BY {columns} HAVING count(*) > 1"
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def wait_for_windows(
    instance: DagsterInstance,
    windows: set[str],
    deadline: float,
    *,
    tag: str,
    check_alive: Callable[[], None],
) -> None:
    """Until each of `windows` (the values of run tag `tag`) has a successful monitoring run and
    none is queued or running; `check_alive` raises when a process the runs need has died."""
    while True:
        check_alive()
        runs = [r.dagster_run for r in monitoring_runs(instance)]
        succeeded = {r.tags[tag] for r in runs if r.status == DagsterRunStatus.SUCCESS}
        if windows <= succeeded and all(r.status in FINISHED for r in runs):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"windows {sorted(windows - succeeded)} not analysed in time")
        time.sleep(1)


@contextmanager
def printed_on_failure(instance: DagsterInstance, describe: Callable[[], str]) -> Iterator[None]:
    """On a failure, print the monitoring runs and `describe()` (the processes' logs)."""
    try:
        yield
    except BaseException:
        print(f"monitoring runs:\n{run_statuses(instance)}\n{describe()}")
        raise
