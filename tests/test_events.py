import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mm_dagster.core.clock import utcnow
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import EventValidationError, UnknownEndpointError
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, traffic_frame


def events_for(window: Window, rows: int = 100, seed: int = 0, **shape: float) -> pd.DataFrame:
    return traffic_frame(rows, window.start, window.end, TrafficShape(**shape), seed=seed)


def stored(mm: Monitoring, window: Window) -> int:
    return sum(len(df) for df in mm.read_window(window).values())


def test_record_and_read_back_a_window(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> None:
    events = events_for(window, 250, error_rate=0.1)
    assert mm.record_events("fraud-model", events) == 250
    back = mm.read_window(window)[endpoint.id]
    assert len(back) == 250
    assert list(back.columns[:4]) == ["timestamp", "request_id", "latency_us", "error"]
    assert str(back["timestamp"].dt.tz) == "UTC"
    assert back["timestamp"].is_monotonic_increasing
    np.testing.assert_allclose(back["f0"].to_numpy(), events["f0"].to_numpy())
    assert back["error"].notna().sum() == events["error"].notna().sum()
    ep = mm.get_endpoint(endpoint.id)
    assert ep.event_count == 250 and ep.error_count == events["error"].notna().sum()
    assert ep.first_request == events["timestamp"].min().to_pydatetime()
    assert ep.last_request == events["timestamp"].max().to_pydatetime()


def test_events_outside_the_window_are_not_read(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    before = Window(window.start - (window.end - window.start), window.start)
    mm.record_events("fraud-model", pd.concat([events_for(before, 10), events_for(window, 20)]))
    assert stored(mm, window) == 20 and stored(mm, before) == 10


def test_layout_is_hive_partitioned_by_slot_and_has_no_temp_files(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    mm.record_events("fraud-model", events_for(window, 10))
    root = Path(mm.settings.events_root)
    files = list(root.rglob("*.parquet"))
    assert len(files) == 1
    rel = files[0].relative_to(root).parts
    assert rel[0] == f"date={window.start:%Y-%m-%d}" and rel[1] == f"slot={window.start:%H%M}"
    assert rel[2].startswith(endpoint.id + "-")
    assert not [p for p in root.rglob(".tmp-*")]


def test_unaligned_windows_filter_by_timestamp(tmp_path: Path) -> None:
    mm = Monitoring(home=str(tmp_path / "h"), base_period=60)
    mm.create_endpoint("m", feature_names=["x"])
    hour = Window.containing("2026-11-20T10:00", 60)
    df = pd.DataFrame({"x": np.arange(60.0), "timestamp": pd.date_range(hour.start, periods=60, freq="1min")})
    mm.record_events("m", df)
    ten = Window.containing("2026-11-20T10:20", 10)
    assert stored(mm, ten) == 10


def test_unknown_endpoint(mm: Monitoring, window: Window) -> None:
    with pytest.raises(UnknownEndpointError, match="unknown endpoint 'nope'"):
        mm.record_events("nope", events_for(window))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.drop(columns=["f2"]), r"field 'f2': missing"),
        (lambda df: df.assign(extra=1.0), r"field 'extra': is not a feature or label"),
        (
            lambda df: df.assign(f1=["x"] + [1.0] * (len(df) - 1)),
            r"field 'f1', row 0: expected a number, got 'x'",
        ),
        (
            lambda df: df.assign(c0=[3] + ["web"] * (len(df) - 1)),
            r"field 'c0', row 0: expected a string, got 3",
        ),
        (
            lambda df: df.assign(f0=[1.0, np.nan] + [1.0] * (len(df) - 2)),
            r"field 'f0', row 1: expected a finite number, got nan",
        ),
        (
            lambda df: df.assign(f3=[np.inf] + [1.0] * (len(df) - 1)),
            r"field 'f3', row 0: expected a finite number, got inf",
        ),
        (lambda df: df.assign(timestamp="not a time"), r"field 'timestamp'"),
        (lambda df: df.assign(latency_us=-1), r"field 'latency_us', row 0: expected a non-negative"),
        (
            lambda df: df.assign(prediction=np.nan, error=None),
            r"field 'prediction', row 0: expected a finite",
        ),
        (lambda df: df.assign(f0=True), r"field 'f0', row 0: expected a number, got True"),
    ],
)
def test_bad_events_are_rejected_and_nothing_is_lost(
    mm: Monitoring,
    endpoint: ModelEndpoint,
    window: Window,
    mutate,
    match: str,  # type: ignore[no-untyped-def]
) -> None:
    mm.record_events("fraud-model", events_for(window, 50, seed=1))
    with pytest.raises(EventValidationError, match=match) as info:
        mm.record_events("fraud-model", mutate(events_for(window, 20, seed=2)))
    assert "endpoint 'fraud-model'" in str(info.value)
    assert stored(mm, window) == 50
    assert mm.get_endpoint("fraud-model").event_count == 50


def test_label_may_be_missing_on_a_failed_request(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    df = events_for(window, 10)
    df.loc[0, "prediction"] = np.nan
    df.loc[0, "error"] = "ValueError: bad input"
    assert mm.record_events("fraud-model", df) == 10


def test_recorder_flushes_by_size_time_and_close(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    recorder = mm.recorder(max_events=5, max_seconds=0.5)
    row = events_for(window, 12).drop(columns=["request_id"], errors="ignore")
    features = row[endpoint.feature_names].to_dict(orient="records")
    for i in range(12):
        recorder.record(
            "fraud-model", features[i], {"prediction": 1.0}, latency_us=100, timestamp=row["timestamp"][i]
        )
    assert stored(mm, window) == 10 and recorder.pending() == 2  # two size flushes
    deadline = time.monotonic() + 5
    while recorder.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored(mm, window) == 12  # the timer flushed the rest
    recorder.record("fraud-model", features[0], {"prediction": 0.0}, timestamp=row["timestamp"][0])
    recorder.close()
    assert stored(mm, window) == 13


def test_recorder_rejects_a_bad_event_at_once(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    recorder = mm.recorder()
    with pytest.raises(EventValidationError, match="field 'c0'"):
        recorder.record("fraud-model", {"f0": 1.0, "f1": 1.0, "f2": 1.0, "f3": 1.0}, {"prediction": 1.0})
    assert recorder.pending() == 0
    recorder.close()


def test_monitored_predict_records_requests_latency_and_errors(
    mm: Monitoring, endpoint: ModelEndpoint
) -> None:
    recorder = mm.recorder(max_events=1000, max_seconds=60)

    def predict(rows: list[list[object]]) -> list[float]:
        if rows[0][0] == -1:
            raise RuntimeError("model crashed")
        return [float(float(r[0]) > 0) for r in rows]

    serve = mm.monitored(predict, "fraud-model", recorder)
    # The recorder stamps requests with the wall clock: read every window from before the first
    # request to after the flush, so crossing a window boundary meanwhile does not matter.
    before = utcnow()
    assert serve([[1.0, 2.0, 3.0, 4.0, "web"], [-2.0, 0.0, 0.0, 0.0, "mobile"]]) == [1.0, 0.0]
    with pytest.raises(RuntimeError, match="model crashed"):
        serve([[-1, 0.0, 0.0, 0.0, "web"]])
    recorder.flush()
    window = Window(Window.containing(before, 10).start, Window.containing(utcnow(), 10).end)
    df = mm.read_window(window)[endpoint.id]
    assert len(df) == 3
    assert df["request_id"].str.endswith("-0").sum() == 2 and df["latency_us"].min() >= 0
    assert df["error"].dropna().tolist() == ["RuntimeError: model crashed"]
    assert mm.get_endpoint(endpoint.id).error_count == 1
    recorder.close()


def test_concurrent_writers_never_corrupt(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> None:
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        try:
            for i in range(5):
                mm.record_events("fraud-model", events_for(window, 40, seed=seed * 100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert stored(mm, window) == 4 * 5 * 40
    assert mm.get_endpoint("fraud-model").event_count == 800


def test_a_failed_commit_leaves_no_visible_file(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(mm.arrivals, "record", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        mm.record_events("fraud-model", events_for(window, 10))
    assert stored(mm, window) == 0
    assert not list(Path(mm.settings.events_root).rglob("*.parquet"))
