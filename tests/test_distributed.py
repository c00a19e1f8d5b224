"""Issue 14 §5: a window analysed on Dagster's distributed engine, for real, on loopback.

The Dagster instance (deploy/dagster.yaml) and the results on PostgreSQL, events, references and
artifacts on moto's S3 server, two dagster-celery workers on RabbitMQ taking the steps of K = 4
shards, a dagster-daemon (queued runs, the controller sensor, run monitoring and retries). Writer
processes feed a few hundred endpoints over closed windows; mid-run one worker is killed with
SIGKILL (with every process it started, as when its host dies) while it executes a shard step.
Its step is acknowledged only when it ends (deploy/celery.yaml: task_acks_late,
task_reject_on_worker_lost), so RabbitMQ hands it to the other worker and the run itself
succeeds (Dagster's run retries, also on, are for runs that fail; a lost worker does not fail
its run). Each window is analysed exactly once per revision, nothing is stored twice, nothing
lands under the local MM_HOME, and the results equal a single-process run of the same windows on
the same data.
"""

import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
)

from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring

from .analysis_snapshot import analysis_snapshot
from .celery_location import CELERY_YAML
from .dagster_runs import (
    DELIVERY_COLUMNS,
    ROOT,
    SHARD_STEP,
    StepStart,
    closed_windows,
    deployment_env,
    duplicates,
    monitoring_runs,
    printed_on_failure,
    run_statuses,
    running_shard_step,
    step_events,
    wait_for_windows,
    workspace_yaml,
)
from .distributed_cluster import Cluster, Process, rabbitmq_or_skip
from .distributed_config import BASE_PERIOD, QUEUE_VARIABLE, SHARDS
from .moto_s3 import MotoS3
from .postgres import cloned_database, fresh_database

pytestmark = [pytest.mark.scale, pytest.mark.slow]

ENDPOINTS = 200
WRITERS = 4
WINDOWS = 3
RUNS_TIMEOUT_SECONDS = 300
WRITERS_TIMEOUT_SECONDS = 180
OBJECT_STORES = ("events", "references", "artifacts")
LOG_TAIL = 5000


def write_events(env: dict[str, str], windows: list[Window], logs: Path) -> None:
    """WRITERS processes, each creating and feeding its share of the endpoints."""
    bounds = [ENDPOINTS * i // WRITERS for i in range(WRITERS + 1)]
    writers = []
    for i in range(WRITERS):
        args = [
            str(bounds[i]),
            str(bounds[i + 1]),
            windows[0].start.isoformat(),
            str(WINDOWS),
            str(BASE_PERIOD),
        ]
        log = (logs / f"writer{i}.log").open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "tests.distributed_writer", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        writers.append((popen, log))
    try:
        for popen, _ in writers:
            popen.wait(timeout=WRITERS_TIMEOUT_SECONDS)
    finally:
        for popen, log in writers:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
            log.close()
    for i, (popen, _) in enumerate(writers):
        output = (logs / f"writer{i}.log").read_text(errors="replace")
        assert popen.returncode == 0, f"writer {i} exited with {popen.returncode}:\n{output[-3000:]}"


def kill_worker_mid_step(
    instance: DagsterInstance, cluster: Cluster, workers: list[Process], deadline: float
) -> StepStart:
    """SIGKILL the worker (and its pool processes) executing a shard step, while it executes it."""
    while time.monotonic() < deadline:
        cluster.check_alive()
        step = running_shard_step(instance)
        if step is not None:
            holders = [w for w in workers if w.holds(step.pid)]
            assert holders, f"step {step.step_key} runs in pid {step.pid}, in no worker's session"
            cluster.killed = holders[0].name
            holders[0].kill()
            return step
        time.sleep(0.1)
    raise AssertionError("no shard step started before the deadline")


def celery_hosts(instance: DagsterInstance, run_ids: list[str]) -> set[str]:
    """The celery workers that took steps of these runs (the celery task's engine event)."""
    hosts = set()
    for run_id in run_ids:
        for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records:
            event = record.event_log_entry.dagster_event
            metadata = event.event_specific_data.metadata if event and event.event_specific_data else {}
            worker = metadata.get("Celery worker") if isinstance(metadata, dict) else None
            if worker is not None:
                hosts.add(str(worker.value).split("@")[0])
    return hosts


def start_single_process_run(
    env: dict[str, str], windows: list[Window], logs: Path
) -> "subprocess.Popen[bytes]":
    """The same windows, K = 1, in process (tests/single_process_run.py), meanwhile, on the copy
    of the database and its own artifacts prefix (artifacts are not analysis rows)."""
    with (logs / "single-process.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.single_process_run", *(w.key for w in windows)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@dataclass(frozen=True)
class Deployment:
    env: dict[str, str]  # every process's environment (this one's too, while it lasts)
    results_url: sa.URL
    bucket: str
    mm_home: Path
    logs: Path
    queue: str

    @property
    def results(self) -> str:
        return self.results_url.render_as_string(hide_password=False)


@contextmanager
def deployment(tmp_path: Path, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """Fresh databases for the Dagster instance and the results, a bucket for the stores, an empty
    MM_HOME, DAGSTER_HOME holding deploy/dagster.yaml, and a queue of this test's own."""
    broker = rabbitmq_or_skip()
    with fresh_database("mm_dist_dagster") as dagster_url, fresh_database("mm_dist_results") as results_url:
        bucket = moto_s3.create_bucket("mm-dist")
        queue = f"mm-test-{uuid.uuid4().hex[:12]}"
        env = {
            **deployment_env(tmp_path, dagster_url, results_url),
            **moto_s3.env(),
            **{f"MM_{kind.upper()}_ROOT": f"s3://{bucket}/{kind}" for kind in OBJECT_STORES},
            "DAGSTER_CELERY_BROKER_URL": broker,
            QUEUE_VARIABLE: queue,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Deployment(env, results_url, bucket, tmp_path / "mm_home", tmp_path / "logs", queue)


def test_windows_on_celery_workers_survive_a_killed_worker_and_match_one_process(
    tmp_path: Path, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.0f} s"

    windows = closed_windows(datetime.now(UTC), WINDOWS)
    keys = {f"mm-{w.key}" for w in windows}
    with deployment(tmp_path, moto_s3, monkeypatch) as d:
        # The schema first, as `mm init` does in a deployment: writers starting on an empty
        # database at once would race to create the same tables.
        Monitoring().close()
        write_events(d.env, windows, d.logs)
        print(f"writers done after {elapsed()}")
        with cloned_database(d.results_url, "mm_dist_single") as single_url:
            single_env = {
                **d.env,
                "MM_DATABASE_URL": single_url.render_as_string(hide_password=False),
                "MM_ARTIFACTS_ROOT": f"s3://{d.bucket}/single-process/artifacts",
            }
            cluster = Cluster(d.env, ROOT, d.logs)
            workers = [cluster.celery_worker(f"worker{i}", CELERY_YAML, d.queue) for i in (1, 2)]
            cluster.daemon(
                workspace_yaml(
                    tmp_path / "workspace.yaml", "tests.distributed_location", "mm_distributed_test"
                )
            )
            single_run = None
            try:
                with DagsterInstance.get() as instance, printed_on_failure(instance, cluster.diagnostics):
                    deadline = time.monotonic() + RUNS_TIMEOUT_SECONDS
                    killed = kill_worker_mid_step(instance, cluster, workers, deadline)
                    print(f"killed {cluster.killed} in {killed} after {elapsed()}")
                    # Meanwhile the other core runs the single-process analysis to compare with.
                    single_run = start_single_process_run(single_env, windows, d.logs)
                    wait_for_windows(
                        instance, keys, deadline, tag="dagster/run_key", check_alive=cluster.check_alive
                    )
                    print(f"windows analysed after {elapsed()}:\n{run_statuses(instance)}")
                    check_runs(instance, keys, killed)
            except BaseException:
                if single_run is not None:
                    single_run.kill()
                raise
            finally:
                cluster.stop()

            assert list(d.mm_home.rglob("*")) == [], "something was written under MM_HOME"
            stored = moto_s3.keys(d.bucket)
            for kind in OBJECT_STORES:
                assert [k for k in stored if k.startswith(f"{kind}/")], f"nothing in s3://{d.bucket}/{kind}"
            assert duplicates(d.results, "mm_notifications", "alert, channel_index, subject") == []
            assert duplicates(d.results, "mm_alert_events", "kind, entity, window_start") == []
            distributed = analysis_snapshot(d.results, leave_out=DELIVERY_COLUMNS)
            for table in ("mm_results", "mm_app_failures", "mm_alert_events", "mm_notifications"):
                assert distributed[table], f"{table} is empty"
            drift = [row for row in distributed["mm_results"] if "'histogram-data-drift'" in row]
            assert len(drift) >= ENDPOINTS * WINDOWS  # every endpoint of every window

            single_log = d.logs / "single-process.log"
            assert single_run.wait(timeout=RUNS_TIMEOUT_SECONDS) == 0, single_log.read_text()[-LOG_TAIL:]
            print(f"single-process run done after {elapsed()}")
            single = analysis_snapshot(single_env["MM_DATABASE_URL"], leave_out=DELIVERY_COLUMNS)
            assert single == distributed
    print(f"done after {elapsed()}")


def check_runs(instance: DagsterInstance, keys: set[str], killed: StepStart) -> None:
    runs = [r.dagster_run for r in monitoring_runs(instance)]
    by_key: dict[str, list[DagsterRunStatus]] = defaultdict(list)
    for run in runs:
        by_key[run.tags["dagster/run_key"]].append(run.status)
    assert set(by_key) == keys, run_statuses(instance)
    for key, statuses in by_key.items():
        # Exactly one success per (window, revision); a failed run may only precede its retry.
        assert statuses.count(DagsterRunStatus.SUCCESS) == 1, (key, statuses)
        assert set(statuses) <= {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}, (key, statuses)
    # The killed step ran again in another process, which finished it; the killed one never did.
    key_of = {r.run_id: r.tags["dagster/run_key"] for r in runs}
    run_ids = [r.run_id for r in runs if key_of[r.run_id] == key_of[killed.run_id]]
    starts = [e for r in run_ids for e in step_events(instance, r, DagsterEventType.STEP_START)]
    finished = [e for r in run_ids for e in step_events(instance, r, DagsterEventType.STEP_SUCCESS)]
    assert [e for e in starts if e.step_key == killed.step_key and e.pid != killed.pid], starts
    finished_by = {e.pid for e in finished if e.step_key == killed.step_key}
    assert finished_by and killed.pid not in finished_by, (killed, finished_by)
    # Both workers took steps (the killed one at least the step it died in).
    assert celery_hosts(instance, [r.run_id for r in runs]) == {"worker1", "worker2"}
    shard_steps = {
        e.step_key for r in runs for e in step_events(instance, r.run_id, DagsterEventType.STEP_SUCCESS)
    }
    assert {f"{SHARD_STEP}{i}_of_{SHARDS}" for i in range(1, SHARDS + 1)} <= shard_steps
