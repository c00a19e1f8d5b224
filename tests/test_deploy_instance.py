"""deploy/dagster.yaml, loaded for real on the loopback PostgreSQL (a fresh database per test), and
deploy/celery.yaml against the celery executor's schema."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import (
    DagsterInstance,
    DefaultRunLauncher,
    QueuedRunCoordinator,
    asset,
    build_sensor_context,
    execute_job,
    materialize,
    reconstructable,
)
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from kombu import Connection

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame

from .conftest import NOW, materialize_window, past_window
from .moto_s3 import MotoS3
from .postgres import fresh_database

pytestmark = pytest.mark.scale

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture
def instance_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.URL]:
    """A fresh PostgreSQL database named by DAGSTER_PG_URL, as deploy/dagster.yaml reads it."""
    with fresh_database("mm_dagster_instance") as url:
        psycopg2 = url.set(drivername="postgresql+psycopg2")  # what dagster-postgres is written for
        monkeypatch.setenv("DAGSTER_PG_URL", psycopg2.render_as_string(hide_password=False))
        yield url


@pytest.fixture
def dagster_home(instance_database: sa.URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[DagsterInstance]:
    with DagsterInstance.get() as loaded:
        yield loaded


def test_instance_settings(instance: DagsterInstance) -> None:
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(instance.run_launcher, DefaultRunLauncher)
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert queue.max_concurrent_runs == 8
    limits = {
        (limit["key"], str(limit.get("value"))): limit["limit"] for limit in queue.tag_concurrency_limits
    }
    assert limits == {
        ("mm/window", "None"): 4,
        ("mm/window", "{'applyLimitPerUniqueValue': True}"): 1,
        ("dagster/backfill", "None"): 2,
    }
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_start_timeout_seconds == 300
    assert instance.run_monitoring_cancel_timeout_seconds == 300
    assert instance.run_monitoring_max_resume_run_attempts == 0  # the default launcher cannot resume
    assert instance.run_monitoring_max_runtime_seconds == 14400
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure
    assert not instance.telemetry_enabled


def test_the_controller_tags_its_runs_as_the_limits_expect(
    instance: DagsterInstance, isolated_home: Path
) -> None:
    """The tag limits count monitoring runs by `mm/window`: every run the controller requests has
    it, one value per window."""
    windows = [past_window(m) for m in (45, 35)]
    with Monitoring(home=str(isolated_home)) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        for i, w in enumerate(windows):
            mm.record_events("m", traffic_frame(100, w.start, w.end, seed=i))
    resource = MonitoringResource(home=str(isolated_home))
    defs = build_definitions(
        MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01"),
        resource=resource,
        clock=fixed_clock(NOW + timedelta(seconds=30)),
    )
    with build_sensor_context(instance=instance, definitions=defs, resources={"mm": resource}) as context:
        requests = defs.resolve_sensor_def("mm_controller").evaluate_tick(context).run_requests
    assert [r.tags["mm/window"] for r in requests] == [w.key for w in windows]


def test_runs_are_recorded_in_postgres(
    instance: DagsterInstance, instance_database: sa.URL, dagster_home: Path, isolated_home: Path
) -> None:
    @asset
    def hello() -> int:
        print("hello from a step")  # captured by the compute log manager
        return 1

    result = materialize([hello], instance=instance)
    assert result.success
    # A monitoring window through the same instance, with mm_dagster's own stores on SQLite.
    window = past_window(60)
    with Monitoring(home=str(isolated_home)) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        mm.record_events("m", traffic_frame(300, window.start, window.end, seed=2))
    defs = build_definitions(
        MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    )
    monitoring = materialize_window(defs, window.key, instance, str(isolated_home))
    assert monitoring.success

    engine = sa.create_engine(instance_database)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT run_id, status FROM runs")).all())
        events = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE run_id = :run"), {"run": monitoring.run_id}
        ).scalar_one()
    engine.dispose()
    assert stored == {result.run_id: "SUCCESS", monitoring.run_id: "SUCCESS"}
    assert events > 10
    assert instance.get_run_by_id(monitoring.run_id) is not None
    # Compute logs: under DAGSTER_HOME on this host, not in the database or MM_HOME.
    captured = [p for p in (dagster_home / "storage").rglob("*") if p.is_file()]
    assert any(b"hello from a step" in p.read_bytes() for p in captured)
    assert not list(isolated_home.rglob("*.out")) and not list(isolated_home.rglob("*.err"))


def test_celery_yaml_is_the_executors_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "pyamqp://guest@127.0.0.1//")
    config = get_validated_config(str(DEPLOY / "celery.yaml"))
    assert config["broker"] == "pyamqp://guest@127.0.0.1//" and config["backend"] == "rpc://"
    assert config["config_source"]["task_acks_late"] is True
    assert config["config_source"]["task_reject_on_worker_lost"] is True
    run_config = yaml.safe_load((DEPLOY / "celery.yaml").read_text())
    assert set(run_config) == {"execution"}  # usable as run config as it stands


def _rabbitmq_or_skip() -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"RabbitMQ is not reachable at 127.0.0.1:5672: {exc}")


@pytest.mark.slow  # a celery worker process
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
def test_a_sharded_window_on_a_celery_worker_with_everything_on_s3_and_postgres(
    instance: DagsterInstance,
    dagster_home: Path,
    s3: MotoS3,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The production path end to end on one host: the instance of deploy/dagster.yaml, a
    `dagster-celery worker` started with deploy/celery.yaml on RabbitMQ, a window in 2 shards on
    the celery executor configured from the same file, results on PostgreSQL and events,
    references and artifacts on S3. The steps run in the worker; nothing lands under MM_HOME."""
    _rabbitmq_or_skip()
    bucket = s3.create_bucket()
    for name, prefix in (("EVENTS", "events"), ("REFERENCES", "references"), ("ARTIFACTS", "artifacts")):
        monkeypatch.setenv(f"MM_{name}_ROOT", f"s3://{bucket}/{prefix}")
    queue = f"mm-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MM_TEST_CELERY_QUEUE", queue)
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "pyamqp://guest@127.0.0.1//")
    window = past_window(60)
    with fresh_database("mm_results") as results_url:
        monkeypatch.setenv("MM_DATABASE_URL", results_url.render_as_string(hide_password=False))
        with Monitoring(clock=fixed_clock(NOW)) as mm:
            ids = [
                mm.create_endpoint(
                    f"model-{i}", reference=reference_frame(1000, seed=i), label_names=["prediction"]
                ).id
                for i in range(6)
            ]
            for i in range(6):
                mm.record_events(f"model-{i}", traffic_frame(200, window.start, window.end, seed=10 + i))
        with _celery_worker(queue, concurrency=2):
            from .celery_location import celery_job

            job = reconstructable(celery_job)
            with execute_job(job, instance=instance, tags={"dagster/partition": window.key}) as result:
                assert result.success
                run_id = result.run_id
        with Monitoring() as mm:
            stored = mm.results.results(app="histogram-data-drift")
    assert sorted({r.endpoint_id for r in stored}) == sorted(ids) and len(stored) == 3 * len(ids)
    starts = [
        entry.dagster_event
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None and entry.dagster_event.event_type_value == "STEP_START"
    ]
    assert sorted(e.step_key for e in starts if e.step_key and "shard" in e.step_key) == [
        "mm__analysis__shard_1_of_2",
        "mm__analysis__shard_2_of_2",
    ]
    assert all(e.pid != os.getpid() for e in starts)  # every step ran in the worker
    assert {f"references/{i}.parquet" for i in ids} <= set(s3.keys(bucket))
    assert not isolated_home.exists()


@contextmanager
def _celery_worker(queue: str, concurrency: int) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-celery worker start -y deploy/celery.yaml` on `queue`, with this process's
    environment (DAGSTER_HOME, the MM_* stores, AWS_*), stopped and its queue deleted on exit."""
    root = Path(__file__).resolve().parents[1]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": str(root), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    worker = subprocess.Popen(
        [
            *(str(bin_dir / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"),
            *("-y", str(DEPLOY / "celery.yaml"), "-q", queue, "--", "--concurrency", str(concurrency)),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the celery process it starts stops with it
    )
    try:
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        with Connection("pyamqp://guest@127.0.0.1//") as broker:
            broker.default_channel.queue_delete(queue)
