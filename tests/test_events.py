import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
        (lambda df: df.assign(timestamp="not a time"), r"field 'timestamp'"),
        (
            lambda df: df.assign(timestamp=1.7e9),
            r"field 'timestamp', row 0: a number is a timestamp only with its unit",
        ),
        (
            lambda df: df.assign(timestamp=pd.Timestamp("2200-01-01", tz="UTC")),
            r"field 'timestamp', row 0: timestamp more than 0:05:00 in the future",
        ),
        (
            lambda df: df.assign(timestamp=pd.Timestamp("1970-01-01", tz="UTC")),
            r"field 'timestamp', row 0: timestamp before 2000-01-01",
        ),
        (lambda df: df.assign(latency_us=-1), r"field 'latency_us', row 0: expected a non-negative"),
        (lambda df: df.assign(latency_us=np.inf), r"field 'latency_us', row 0: expected a non-negative"),
        (lambda df: df.assign(latency_us=1e30), r"field 'latency_us', row 0: expected a non-negative"),
        (
            lambda df: df.assign(request_id="r" * 257),
            r"field 'request_id', row 0: request_id longer than 256",
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


def test_missing_and_non_finite_values_are_data(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    df = events_for(window, 6)
    df["f0"] = [np.nan, None, 1.0, np.inf, -np.inf, 2.0]
    df["c0"] = ["web", None, pd.NA, "mobile", "web", np.nan]
    df["prediction"] = [np.nan, 1.0, 0.0, 1.0, None, 0.0]  # no error needed
    assert mm.record_events("fraud-model", df) == 6
    back = mm.read_window(window)[endpoint.id].sort_values("timestamp").reset_index(drop=True)
    assert back["f0"].isna().sum() == 2 and np.isinf(back["f0"]).sum() == 2
    assert back["c0"].isna().sum() == 3 and back["prediction"].isna().sum() == 2


def test_epoch_numbers_are_timestamps_with_their_unit(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    df = events_for(window, 3)
    df["timestamp"] = [window.start.timestamp() + i for i in range(3)]  # time.time() style
    assert mm.record_events("fraud-model", df, timestamp_unit="s") == 3
    back = mm.read_window(window)[endpoint.id]
    assert back["timestamp"].min() == pd.Timestamp(window.start)


def test_label_may_be_missing_on_a_failed_request(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    df = events_for(window, 10)
    df.loc[0, "prediction"] = np.nan
    df.loc[0, "error"] = "ValueError: bad input"
    assert mm.record_events("fraud-model", df) == 10


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
