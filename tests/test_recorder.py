"""The serving-side recorder: never raises into the caller, never blocks it on I/O, loses nothing
it accepted (spool while the store is down, flush on SIGTERM), counts what it cannot store."""

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.windows import Window
from mm_dagster.events.recorder import BUFFER_FULL, EventRecorder
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame

FEATURES = {"f0": 1.0, "f1": 2.0, "f2": 3.0, "f3": 4.0, "c0": "web"}


def around_now() -> Window:
    """A window around the recording time (events are stamped with the real clock)."""
    now = datetime.now(UTC)
    return Window(now - timedelta(hours=1), now + timedelta(hours=1))


def stored(mm: Monitoring, endpoint: ModelEndpoint) -> pd.DataFrame:
    return mm.read_window(around_now()).get(endpoint.id, pd.DataFrame())


def wait_for(condition: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def recorder(mm: Monitoring) -> EventRecorder:
    rec = mm.recorder(max_events=5, max_seconds=0.5, handle_signals=False)
    yield rec
    rec.close()


def test_flushes_by_size_and_age_in_the_background(
    mm: Monitoring, endpoint: ModelEndpoint, recorder: EventRecorder
) -> None:
    for i in range(12):
        recorder.record("fraud-model", {**FEATURES, "f0": float(i)}, {"prediction": 1.0}, latency_us=100)
    assert wait_for(lambda: len(stored(mm, endpoint)) == 12)  # two by size, the rest by age
    recorder.record("fraud-model", FEATURES, {"prediction": 0.0})
    recorder.close()
    assert len(stored(mm, endpoint)) == 13 and recorder.stats.stored == 13


def test_a_bad_event_is_counted_not_raised_and_its_batch_is_stored(
    mm: Monitoring, endpoint: ModelEndpoint, recorder: EventRecorder
) -> None:
    for _ in range(3):
        recorder.record("fraud-model", FEATURES, {"prediction": 1.0})
    recorder.record("fraud-model", {**FEATURES, "c9": "not a feature"}, {"prediction": 1.0})
    recorder.record("fraud-model", {**FEATURES, "f1": "not a number"}, {"prediction": 1.0})
    assert recorder.flush()
    assert len(stored(mm, endpoint)) == 3 and recorder.stats.invalid == 2
    window = around_now()
    counts = mm.invalid_events.counts(window.start, window.end)[endpoint.id]
    assert sum(counts.values()) == 2
    assert any("c9" in reason for reason in counts) and any("f1" in reason for reason in counts)


def test_monitored_predict_records_rows_latency_and_errors(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    recorder = mm.recorder(max_events=1000, max_seconds=60, handle_signals=False)

    def predict(rows: list[list[object]]) -> list[float]:
        if rows[0][0] == -1:
            raise RuntimeError("model crashed")
        return [float(float(str(r[0])) > 0) for r in rows]

    serve = mm.monitored(predict, "fraud-model", recorder)
    assert serve([[1.0, 2.0, 3.0, 4.0, "web"], [-2.0, 0.0, 0.0, 0.0, "mobile"]]) == [1.0, 0.0]
    with pytest.raises(RuntimeError, match="model crashed"):
        serve([[-1, 0.0, 0.0, 0.0, "web"]])
    assert recorder.flush()
    df = stored(mm, endpoint)
    assert len(df) == 3
    assert df["request_id"].str.endswith("-0").sum() == 2 and df["latency_us"].min() >= 0
    assert df["error"].dropna().tolist() == ["RuntimeError: model crashed"]
    assert mm.get_endpoint(endpoint.id).error_count == 1
    recorder.close()


def test_monitored_never_raises_what_predict_did_not(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    recorder = mm.recorder(max_events=1000, max_seconds=60, handle_signals=False)
    serve = mm.monitored(lambda rows: [1.0, 2.0, 3.0], "fraud-model", recorder)  # 3 outputs, 1 row
    assert serve([[1.0, 2.0, 3.0, 4.0, "web"]]) == [1.0, 2.0, 3.0]
    unknown = mm.monitored(lambda rows: [1.0], "no-such-endpoint", recorder)
    assert unknown([[1.0, 2.0, 3.0, 4.0, "web"]]) == [1.0]
    assert recorder.flush()
    assert recorder.stats.invalid == 2 and stored(mm, endpoint).empty
    recorder.close()


def test_a_full_buffer_counts_what_it_drops(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    recorder = mm.recorder(max_events=10_000, max_seconds=60, max_buffered=10, handle_signals=False)
    for _ in range(15):
        recorder.record("fraud-model", FEATURES, {"prediction": 1.0})
    assert recorder.stats.dropped == 5 and recorder.pending() == 10
    recorder.close()
    assert len(stored(mm, endpoint)) == 10
    assert BUFFER_FULL  # the reason logged and counted for a full buffer


@pytest.mark.slow
def test_store_outage_spools_then_replays_without_loss_or_duplicates(
    mm: Monitoring, endpoint: ModelEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = mm.recorder(max_events=20, max_seconds=0.2, handle_signals=False)
    serve = mm.monitored(lambda rows: [1.0 for _ in rows], "fraud-model", recorder)
    events_root = Path(mm.settings.events_root)
    away = events_root.with_name("events-away")
    events_root.rename(away)
    events_root.write_text("the volume is gone")  # every write into the store now fails
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        for i in range(100):
            assert serve([[float(i), 1.0, 2.0, 3.0, "web"]]) == [1.0]
        assert recorder.flush()
    assert time.perf_counter() - started < 5  # predict kept answering
    assert recorder.spool.pending() > 0 and "spooling locally" in caplog.text
    events_root.unlink()
    away.rename(events_root)
    assert wait_for(lambda: recorder.spool.pending() == 0, seconds=20)
    df = stored(mm, endpoint)
    assert len(df) == 100 and not df["request_id"].duplicated().any()
    assert mm.get_endpoint(endpoint.id).event_count == 100
    recorder.close()


def test_replaying_a_batch_already_stored_does_not_duplicate_it(
    mm: Monitoring, endpoint: ModelEndpoint
) -> None:
    from mm_dagster.events.validation import validate_events

    df = pd.DataFrame([{**FEATURES, "prediction": 1.0}] * 5)
    table = validate_events(endpoint, df, pd.Timestamp.now(tz="UTC"))
    assert mm.ingestor.record_table(endpoint.id, table, batch_id="b-1") == 5
    assert mm.ingestor.record_table(endpoint.id, table, batch_id="b-1") == 0  # died before un-spooling
    assert len(stored(mm, endpoint)) == 5 and mm.get_endpoint(endpoint.id).event_count == 5


def test_a_full_spool_drops_with_a_count_and_a_log_line(
    mm: Monitoring, endpoint: ModelEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = mm.recorder(max_events=5, max_seconds=0.2, spool_max_bytes=1, handle_signals=False)
    events_root = Path(mm.settings.events_root)
    shutil.rmtree(events_root)
    events_root.write_text("the volume is gone")
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            recorder.record("fraud-model", FEATURES, {"prediction": 1.0})
        assert recorder.flush()
    assert recorder.stats.dropped == 5 and "is full" in caplog.text
    recorder.close()


def _default_signal_dispositions() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.slow
def test_sigterm_flushes_a_serving_process(isolated_home: Path) -> None:
    home = str(isolated_home)
    with Monitoring(home=home) as mm:
        mm.create_endpoint("served", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.serving_process", home],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As an orchestrator starts a server: default dispositions. (Something in the suite leaves
        # SIGTERM ignored in pytest's process, and an ignored signal is inherited; the recorder
        # respects an inherited ignore after flushing, so the server would keep running.)
        preexec_fn=_default_signal_dispositions,
    )
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "served 200"  # all buffered, none stored yet
    server.send_signal(signal.SIGTERM)
    try:
        returncode = server.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"the server did not stop after SIGTERM; its stderr:\n{server.communicate()[1]}")
    _, stderr = server.communicate()  # also closes the pipes
    assert returncode == -signal.SIGTERM, stderr  # dies of SIGTERM, after flushing
    with Monitoring(home=home) as mm:
        endpoint = mm.get_endpoint("served")
        assert len(stored(mm, endpoint)) == 200 and endpoint.event_count == 200
    assert os.path.isdir(Path(home) / "spool") is False or not any((Path(home) / "spool").rglob("*.parquet"))


def test_invalid_events_reach_apps_and_the_window_asset(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    from dagster import instance_for_test

    from mm_dagster.applications import OperationalApplication
    from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
    from mm_dagster.dagster_defs.resources import MonitoringResource

    recorder = mm.recorder(max_events=1000, max_seconds=60, handle_signals=False)
    window = Window.containing(datetime.now(UTC) - timedelta(minutes=30), 10)  # closed: a partition
    at = window.start + timedelta(minutes=1)
    for _ in range(4):
        recorder.record("fraud-model", FEATURES, {"prediction": 1.0}, timestamp=at)
    recorder.record("fraud-model", {**FEATURES, "f1": "n/a"}, {"prediction": 1.0}, timestamp=at)
    recorder.close()
    app = OperationalApplication()
    mm.run_window([app], window)
    (metric,) = mm.results.metrics(endpoint.id, app.name, "invalid_events")
    assert metric.value == 1.0
    config = MonitoringConfig(apps=[app], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=mm.settings.home))
    with instance_for_test() as instance:
        result = defs.resolve_job_def("mm_monitoring_job").execute_in_process(
            instance=instance, partition_key=window.key
        )
        (window_events,) = result.asset_materializations_for_node("mm__window_events")
        assert window_events.metadata["invalid_events"].value == 1
