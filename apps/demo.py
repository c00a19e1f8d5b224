"""`make demo`: endpoints, served traffic with drift and an error burst, monitored through Dagster.

Everything runs on the embedded defaults under MM_HOME (default ./.mm_home): SQLite, local
Parquet, and a persistent Dagster instance in MM_HOME/dagster. The windows are analysed by a
`dagster-daemon` on workspace.yaml, as in a deployment: its controller sensor requests the runs
and its run queue launches them from the code location, so `make dev` afterwards shows them on
the Overview timeline, under the sensor, with the ticks' logs, check results and plots.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

WINDOWS = 18  # three hours of 10-minute windows
MARKER = ".mm_demo"
ROOT = Path(__file__).resolve().parent.parent
DAEMON_LOG = Path("daemon.log")
RUN_TIMEOUT_SECONDS = 600
# The instance the demo and `make dev` share: runs queue and at most two run at once (2 cores).
INSTANCE_YAML = """telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 2
"""


@contextmanager
def running_daemon(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run -w workspace.yaml`: the sensors tick and the queued runs launch
    through the code location the UI loads, so the runs carry its origin and the sensor's tags."""
    daemon = Path(sys.executable).parent / "dagster-daemon"
    with (home / "dagster" / DAEMON_LOG).open("wb") as log:
        process = subprocess.Popen(
            [str(daemon), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            stdout=log,
            stderr=log,
            # A shell's background job ignores SIGINT, and so would the daemon: it stops on SIGINT.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _finished(status: object) -> bool:
    from dagster import DagsterRunStatus

    return status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def _check_daemon(daemon: subprocess.Popen[bytes], home: Path) -> None:
    if daemon.poll() is not None:
        sys.exit(f"the Dagster daemon exited ({daemon.returncode}); see {home / 'dagster' / DAEMON_LOG}")


def wait_for_runs(instance: Any, sensor: str, run_keys: list[str], daemon: subprocess.Popen[bytes]) -> None:
    """Prints each run of `run_keys` the sensor requested as it finishes; returns when all have."""
    from dagster import RunsFilter

    home = Path(os.environ["MM_HOME"])
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    printed: set[str] = set()
    while len(printed) < len(run_keys):
        _check_daemon(daemon, home)
        if time.monotonic() > deadline:
            missing = sorted(set(run_keys) - printed)
            sys.exit(f"runs {missing} did not finish in {RUN_TIMEOUT_SECONDS} s; see {home / 'dagster'}")
        for record in instance.get_run_records(RunsFilter(tags={"dagster/sensor_name": sensor})):
            run = record.dagster_run
            key = run.tags.get("dagster/run_key", "")
            if key in run_keys and key not in printed and _finished(run.status):
                printed.add(key)
                state = "ok" if run.status.value == "SUCCESS" else run.status.value
                print(f"  run {key:<32} {state:<8} (run {run.run_id[:8]}, launched by {sensor})")
        time.sleep(1)


def wait_for_all_runs(instance: Any, daemon: subprocess.Popen[bytes]) -> None:
    """Lets the runs the other sensors requested meanwhile finish before the daemon stops."""
    home = Path(os.environ["MM_HOME"])
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while any(not _finished(r.dagster_run.status) for r in instance.get_run_records()):
        _check_daemon(daemon, home)
        if time.monotonic() > deadline:
            sys.exit(f"runs still in progress after {RUN_TIMEOUT_SECONDS} s; see {home / 'dagster'}")
        time.sleep(1)


def prepare_home() -> Path:
    home = Path(os.environ.get("MM_HOME") or ".mm_home").absolute()
    if home.exists() and any(home.iterdir()) and not (home / MARKER).exists():
        sys.exit(f"MM_HOME={home} holds data that the demo did not create; point MM_HOME elsewhere")
    if home.exists():
        shutil.rmtree(home)
    (home / "dagster").mkdir(parents=True)
    (home / MARKER).write_text("created by `make demo`; safe to delete\n")
    (home / "dagster" / "dagster.yaml").write_text(INSTANCE_YAML)
    os.environ["MM_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    return home


def main() -> None:
    started = time.monotonic()
    home = prepare_home()
    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    alert_log = logging.StreamHandler(sys.stdout)
    alert_log.setFormatter(logging.Formatter("  alert (log channel): %(message)s"))
    logging.getLogger("mm_dagster.alerts").addHandler(alert_log)

    from dagster import DagsterInstance, RunsFilter, build_sensor_context

    from apps.definitions import config, defs
    from mm_dagster.alerts import CHECKS_ALERT
    from mm_dagster.core.model_task import ModelTask, TaskKind
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.schemas import ResultStatusApp
    from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
    from mm_dagster.windows import Window, closed_before

    mm = Monitoring()
    print(f"mm_dagster demo — MM_HOME={home}")
    models = {
        "fraud-detector": ("fraud-xgb", "7"),
        "churn-model": ("churn-lr", "3"),
        "pricing-model": ("pricing-gbm", "12"),
    }
    endpoints = {
        name: mm.create_endpoint(
            name,
            reference=reference_frame(20_000, seed=seed, with_truth=True).drop(columns="request_id"),
            label_names=["prediction", "score"],
            task=ModelTask(TaskKind.binary, prediction="prediction", target="label", scores={"1": "score"}),
            model_name=model,
            model_version=version,
        )
        for seed, (name, (model, version)) in enumerate(models.items(), start=1)
    }
    now = datetime.now(UTC)
    end = closed_before(now, config.allowed_lateness, config.base_period)
    step = timedelta(minutes=config.base_period)
    windows = [Window(end - step * (WINDOWS - i), end - step * (WINDOWS - i - 1)) for i in range(WINDOWS)]
    span = f"{windows[0].start:%H:%M} to {windows[-1].end:%H:%M} UTC"
    print(f"simulating traffic for {len(windows)} windows, {span}:")
    print("  fraud-detector drifts (f0, f1 shift by 1.5 SD) from the 2nd hour on;")
    print("  churn-model has an error burst (25% errors) in three windows, and from the 3rd hour")
    print("    its world changes: 40% of outcomes turn against the model (labels show it, inputs don't);")
    print("  pricing-model stays healthy, then gets no traffic in the last two windows.")
    labels: dict[int, list[tuple[str, object]]] = {}
    for i, w in enumerate(windows):
        for name in endpoints:
            if name == "pricing-model" and i >= WINDOWS - 2:
                continue
            shape = TrafficShape()
            if name == "fraud-detector" and i >= 6:
                shape = TrafficShape(mean_shift=1.5, drifted_features=2)
            if name == "churn-model" and i in (9, 10, 11):
                shape = TrafficShape(error_rate=0.25)
            if name == "churn-model" and i >= 12:
                shape = TrafficShape(concept_drift=0.4)
            served = traffic_frame(400, w.start, w.end, shape, seed=i * 10 + len(name), with_truth=True)
            mm.record_events(name, served.drop(columns="label"))
            answered = served[served["error"].isna()]
            labels.setdefault(i, []).append((name, answered[["request_id", "label"]]))
    # Ground truth comes later than predictions: the last four windows have none yet.
    print(f"labels (the true outcomes) arrive for the first {WINDOWS - 4} windows")
    for i in range(WINDOWS - 4):
        for name, frame in labels[i]:
            mm.record_labels(name, frame)

    instance = DagsterInstance.get()
    resource = defs.resources["mm"]
    controller = defs.resolve_sensor_def("mm_controller")
    delivery = defs.resolve_sensor_def("mm_alert_delivery")

    def deliver() -> None:
        with build_sensor_context(instance=instance, resources={"mm": resource}) as context:
            delivery.evaluate_tick(context)

    first = [f"mm-{w.key}" for w in windows]
    late_window = windows[-3]
    late = [f"mm-{windows[-4].key}-rev1", f"mm-{late_window.key}-rev1"]
    print(f"\nstarting the Dagster daemon on the code location of workspace.yaml ({DAEMON_LOG.name}):")
    print(f"  its {controller.name} sensor ticks every {controller.minimum_interval_seconds} s; each run it")
    print("  requests is queued and launched in its own process, as in a deployment")
    with running_daemon(home) as daemon:
        wait_for_runs(instance, controller.name, first, daemon)
        deliver()
        print(f"\nlate events arrive for window {late_window.key}; the next tick re-requests it:")
        extra = traffic_frame(50, late_window.start, late_window.end, seed=999, with_truth=True)
        mm.record_events("pricing-model", extra.drop(columns="label"))
        print(f"labels arrive for windows {windows[-4].key} and {windows[-3].key}: they are re-analysed too")
        for i in (WINDOWS - 4, WINDOWS - 3):
            for name, frame in labels[i]:
                mm.record_labels(name, frame)
        wait_for_runs(instance, controller.name, late, daemon)
        deliver()
        wait_for_all_runs(instance, daemon)
    runs, late_runs = len(first), len(late)

    marks = {ResultStatusApp.detected: "!", ResultStatusApp.potential_detection: "?"}
    by_key = {}
    for r in mm.results.results(start=windows[0].start, end=windows[-1].end):
        if r.status in marks:
            by_key.setdefault((r.window_start, r.endpoint_id), []).append(f"{r.name}{marks[r.status]}")
    names = list(endpoints)
    print("\nwindow (UTC)      " + "".join(f"{n:<34}" for n in names))
    for w in windows:
        cells = [", ".join(sorted(by_key.get((w.start, endpoints[n].id), []))) or "ok" for n in names]
        print(f"{w.start:%Y-%m-%d %H:%M}  " + "".join(f"{c:<34}" for c in cells))
    print("  (! detected, ? potential)")

    print("\ngating (apps/gating.py):")
    launched = instance.get_run_records(RunsFilter(tags={"dagster/sensor_name": "fraud_retrain_on_drift"}))
    for record in launched:
        run = record.dagster_run
        print(f"  fraud_retrain_on_drift launched fraud_retrain_job: run {run.run_id[:8]} {run.status.value}")
    if not launched:  # the sensor ticks every minute: show what its next tick requests
        retrain = defs.resolve_sensor_def("fraud_retrain_on_drift")
        with build_sensor_context(instance=instance, definitions=defs, resources={"mm": resource}) as context:
            retrain_tick = retrain.evaluate_tick(context)
        for request in retrain_tick.run_requests:
            print(f"  fraud_retrain_on_drift's next tick requests fraud_retrain_job ({request.run_key})")
    promotion = defs.resolve_job_def("fraud_promotion_job").execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        instance=instance,
        raise_on_error=False,
    )
    blocked = not promotion.asset_materializations_for_node("fraud_promotion")
    print(f"  fraud_promotion_job: promotion {'blocked by the drift gate' if blocked else 'ran'}")

    from mm_dagster.dagster_defs.alert_sensors import alert_service_for

    notes = alert_service_for(mm, config, lambda: datetime.now(UTC)).store.notifications()
    print(
        f"\n{runs + late_runs} Dagster runs, {len(notes)} notifications sent "
        f"({sum(n.alert == CHECKS_ALERT for n in notes)} for failed checks), "
        f"in {time.monotonic() - started:.0f} s"
    )
    print("\nwhere things live:")
    print(f"  results, metrics, alerts: {mm.settings.database_url}")
    print(f"  events (Parquet):         {mm.settings.events_root}")
    print(f"  Dagster instance:         {home / 'dagster'}")
    print("  inspect:                  .venv/bin/mm results | .venv/bin/mm alerts list")
    print("  open the UI:              make dev   (then http://127.0.0.1:3000, asset group model_monitoring)")
    print("  the monitoring pages:     make serve (then http://127.0.0.1:8080: endpoints, drift, windows)")


if __name__ == "__main__":
    main()
