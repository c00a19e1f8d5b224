"""Issue 14 §5, the run-retry path: a monitoring run whose shard step process is SIGKILLed fails,
and the daemon's run retries (deploy/dagster.yaml) finish its window in a new run.

The Dagster instance (deploy/dagster.yaml) and the results on PostgreSQL, events under a local
MM_HOME, a dagster-daemon (the controller sensor, the queued run coordinator, run retries) and a
code location of K = 4 shards on the multiprocess executor (tests/retry_location.py). Mid-run the
process of a shard step is killed with SIGKILL while the step executes: the executor fails the
step, so the run fails (unlike a lost celery worker in tests/test_distributed.py, whose step
RabbitMQ hands to another worker). The daemon retries the run from its failure: exactly one
retry, which runs the killed shard again and succeeds. Every window is analysed once, nothing is
stored twice, and the results equal a single-process run of the same windows on the same data.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from .analysis_snapshot import analysis_snapshot
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
from .distributed_cluster import Cluster, Process
from .distributed_config import BASE_PERIOD, SHARDS
from .distributed_writer import main as write_endpoints
from .postgres import cloned_database, fresh_database

pytestmark = [pytest.mark.scale, pytest.mark.slow]

ENDPOINTS = 40
# One window: a notification goes out when an alert activates, in the order windows are analysed,
# so a retried window that ends after a newer window's run would notify for the newer window,
# unlike the single-process run, which analyses windows oldest first.
WINDOWS = 1
TIMEOUT_SECONDS = 300  # a loaded or slow machine: the daemon, runs and steps start slowly
LOG_TAIL = 5000


def kill_step_process(instance: DagsterInstance, daemon: Process, deadline: float) -> StepStart:
    """SIGKILL the process of a shard step while the step executes."""
    while time.monotonic() < deadline:
        assert daemon.popen.poll() is None, daemon.tail()
        step = running_shard_step(instance)
        if step is not None:
            # The step processes descend from the daemon (its code server launches the runs).
            assert daemon.holds(step.pid), f"step {step.step_key} runs in pid {step.pid}, outside the daemon"
            try:
                os.kill(step.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # the step ended meanwhile (its end is not in the event log yet)
            return step
        time.sleep(0.1)
    raise AssertionError("no shard step started before the deadline")


def alive(daemon: Process) -> Callable[[], None]:
    def check() -> None:
        assert daemon.popen.poll() is None, daemon.tail()

    return check


def test_a_run_whose_step_process_is_killed_is_retried_and_finishes_its_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.0f} s"

    windows = closed_windows(datetime.now(UTC), WINDOWS)
    with fresh_database("mm_retry_dagster") as dagster_url, fresh_database("mm_retry_results") as results_url:
        results = results_url.render_as_string(hide_password=False)
        env = deployment_env(tmp_path, dagster_url, results_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        write_endpoints(0, ENDPOINTS, windows[0].start.isoformat(), WINDOWS, BASE_PERIOD)
        print(f"endpoints written after {elapsed()}")

        with cloned_database(results_url, "mm_retry_single") as single_url:
            single_env = {
                **env,
                "MM_DATABASE_URL": single_url.render_as_string(hide_password=False),
                "MM_ARTIFACTS_ROOT": str(tmp_path / "single_artifacts"),
            }
            cluster = Cluster(env, ROOT, tmp_path / "logs")
            daemon = cluster.daemon(
                workspace_yaml(tmp_path / "workspace.yaml", "tests.retry_location", "mm_retry_test")
            )
            single_log = tmp_path / "logs" / "single-process.log"
            single_run = None
            try:
                with DagsterInstance.get() as instance, printed_on_failure(instance, daemon.tail):
                    deadline = time.monotonic() + TIMEOUT_SECONDS
                    killed = kill_step_process(instance, daemon, deadline)
                    print(f"killed {killed} after {elapsed()}")
                    with single_log.open("wb") as log:
                        single_run = subprocess.Popen(
                            [sys.executable, "-m", "tests.retry_location", *(w.key for w in windows)],
                            cwd=ROOT,
                            env=single_env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    wait_for_windows(
                        instance,
                        {w.key for w in windows},
                        deadline,
                        tag="mm/window",
                        check_alive=alive(daemon),
                    )
                    print(f"windows analysed after {elapsed()}:\n{run_statuses(instance)}")
                    check_runs(instance, {w.key for w in windows}, killed)
                    assert single_run.wait(timeout=TIMEOUT_SECONDS) == 0, single_log.read_text()[-LOG_TAIL:]
            except BaseException:
                if single_run is not None and single_run.poll() is None:
                    single_run.kill()
                    single_run.wait()
                raise
            finally:
                cluster.stop()

            # Results, metrics and app failures are unique by their primary keys; these are not.
            assert duplicates(results, "mm_notifications", "alert, channel_index, subject") == []
            assert duplicates(results, "mm_alert_events", "kind, entity, window_start") == []
            retried = analysis_snapshot(results, leave_out=DELIVERY_COLUMNS)
            for table in ("mm_results", "mm_app_failures", "mm_alert_events", "mm_notifications"):
                assert retried[table], f"{table} is empty"
            drift = [row for row in retried["mm_results"] if "'histogram-data-drift'" in row]
            assert len(drift) >= ENDPOINTS * WINDOWS  # every endpoint of every window
            single = analysis_snapshot(single_env["MM_DATABASE_URL"], leave_out=DELIVERY_COLUMNS)
            assert single == retried, snapshot_difference(single, retried)
    print(f"done after {elapsed()}")


def snapshot_difference(single: dict[str, list[str]], retried: dict[str, list[str]]) -> str:
    lines = []
    for table in single:
        only_single = sorted(set(single[table]) - set(retried[table]))
        only_retried = sorted(set(retried[table]) - set(single[table]))
        lines += [f"{table} only in the single-process run: {row}" for row in only_single]
        lines += [f"{table} only after the retry: {row}" for row in only_retried]
    return "\n".join(lines)


def check_runs(instance: DagsterInstance, windows: set[str], killed: StepStart) -> None:
    runs = {r.dagster_run.run_id: r.dagster_run for r in monitoring_runs(instance)}
    first = runs[killed.run_id]
    assert first.status == DagsterRunStatus.FAILURE, run_statuses(instance)
    failed = {e.step_key for e in step_events(instance, first.run_id, DagsterEventType.STEP_FAILURE)}
    assert killed.step_key in failed, failed
    # Exactly one retry, of the failed run; every other window ran once and succeeded.
    retries = [r for r in runs.values() if r.tags.get("dagster/parent_run_id") == first.run_id]
    assert len(retries) == 1, run_statuses(instance)
    retry = retries[0]
    assert retry.status == DagsterRunStatus.SUCCESS, run_statuses(instance)
    assert retry.tags.get("dagster/retry_number") == "1"
    assert retry.tags["mm/window"] == first.tags["mm/window"]
    by_window: dict[str, list[DagsterRun]] = {}
    for run in runs.values():
        by_window.setdefault(run.tags["mm/window"], []).append(run)
    assert set(by_window) == windows, run_statuses(instance)
    for window, window_runs in by_window.items():
        statuses = sorted(r.status.value for r in window_runs)
        expected = ["FAILURE", "SUCCESS"] if window == first.tags["mm/window"] else ["SUCCESS"]
        assert statuses == expected, (window, statuses)
    # The retry ran the killed shard again, in another process, to its end.
    starts = step_events(instance, retry.run_id, DagsterEventType.STEP_START)
    assert [e for e in starts if e.step_key == killed.step_key and e.pid != killed.pid], starts
    succeeded = {e.step_key for e in step_events(instance, retry.run_id, DagsterEventType.STEP_SUCCESS)}
    assert killed.step_key in succeeded, succeeded
    first_succeeded = {e.step_key for e in step_events(instance, first.run_id, DagsterEventType.STEP_SUCCESS)}
    assert killed.step_key not in first_succeeded
    shards = {f"{SHARD_STEP}{i}_of_{SHARDS}" for i in range(1, SHARDS + 1)}
    assert shards <= first_succeeded | succeeded
    # From the failure: the shards the first run finished did not run again.
    assert not {e.step_key for e in starts} & first_succeeded, (first_succeeded, starts)
