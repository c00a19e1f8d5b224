"""A window read with its float columns as one array per endpoint (core.window_events): the
blocks hold exactly the frames' float columns, belong to the frames they were read with, survive
the shard split and the label join, and give the drift app the numbers pandas gives it."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import HistogramDataDriftApplication, OperationalApplication
from mm_dagster.applications.base import event_columns_read
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.shards import Shard
from mm_dagster.core.window_events import NumberBlock, WindowEvents, numbers_of
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame
from mm_dagster.stats import drift
from mm_dagster.stats.drift import feature_drifts
from mm_dagster.stats.reference_plan import prepare_reference

from .labelled_model import BINARY, OUTPUTS, binary_frame

WINDOW = Window.containing("2026-11-20T10:00:00Z", 10)
LATER = datetime(2026, 11, 20, 13, tzinfo=UTC)
NAMES = [f"m{i}" for i in range(5)]


@pytest.fixture
def mm(tmp_path: Path) -> Monitoring:
    monitoring = Monitoring(home=str(tmp_path / "home"), clock=fixed_clock(LATER))
    for i, name in enumerate(NAMES):
        monitoring.create_endpoint(name, reference=reference_frame(400, seed=i), label_names=["prediction"])
        events = traffic_frame(50 + 7 * i, WINDOW.start, WINDOW.end, seed=10 + i)
        events.loc[events.index[::9], "f0"] = np.nan  # missing values stay NaN in the block
        monitoring.record_events(name, events)
    return monitoring


def test_each_endpoints_block_holds_its_frames_float_columns_read_only(mm: Monitoring) -> None:
    events = mm.events.read_window(WINDOW)
    assert isinstance(events, WindowEvents) and len(events) == len(NAMES)
    for endpoint_id, frame in events.items():
        block = events.numbers_of(endpoint_id)
        assert block is not None and block.frame is frame
        floats = [c for c in frame.columns if frame[c].dtype == np.float64]
        assert list(block.columns) == floats and block.values.shape == (len(frame), len(floats))
        np.testing.assert_array_equal(block.values, frame[floats].to_numpy())
        assert np.isnan(block.values[::9, floats.index("f0")]).all()
        assert not block.values.flags.writeable
        with pytest.raises(ValueError):
            block.values[0, 0] = 1.0
        # the frame's float columns are the block's memory, not a copy of it
        assert np.shares_memory(frame["f0"].to_numpy(), block.values)


def test_a_block_belongs_to_its_frame_only(mm: Monitoring) -> None:
    events = mm.events.read_window(WINDOW)
    endpoint_id, frame = next(iter(events.items()))
    block = events.numbers_of(endpoint_id)
    assert block is not None
    assert block.of(frame) is block
    assert block.of(frame.copy()) is None
    assert block.of(frame[frame["f1"] > 0]) is None
    events[endpoint_id] = frame.sort_values("f1")  # a frame made after the read
    assert events.numbers_of(endpoint_id) is None
    assert numbers_of(dict(events), endpoint_id) is None  # a plain mapping has no blocks


def test_select_takes_columns_in_the_asked_order_or_none(mm: Monitoring) -> None:
    events = mm.events.read_window(WINDOW)
    endpoint_id, frame = next(iter(events.items()))
    block = events.numbers_of(endpoint_id)
    assert block is not None
    assert block.select(block.columns) is block.values
    picked = block.select(["f2", "f0"])
    assert picked is not None and picked.flags.f_contiguous
    np.testing.assert_array_equal(picked, frame[["f2", "f0"]].to_numpy())
    assert block.select(["f0", "not-a-column"]) is None


def test_blocks_survive_the_shard_split_and_the_label_join(mm: Monitoring) -> None:
    shard = Shard(0, 2)
    events = mm.events.read_window(WINDOW)
    part = events.derived(shard.part_of(events))
    assert set(part) == {e for e in events if shard.holds(e)}
    assert all(part.numbers_of(e) is events.numbers_of(e) for e in part)
    endpoint_id = next(iter(events))
    joined_frame = events[endpoint_id].copy(deep=False)
    joined_frame["label"] = 1.0
    joined = events.derived({**events, endpoint_id: joined_frame}, same_rows=[endpoint_id])
    moved = joined.numbers_of(endpoint_id)
    assert moved is not None and moved.frame is joined_frame
    assert moved.values is events.numbers[endpoint_id].values


def test_the_drift_is_the_same_from_the_block_and_from_pandas(mm: Monitoring) -> None:
    events = mm.events.read_window(WINDOW)
    for name in NAMES:
        endpoint = mm.get_endpoint(name)
        frame = events[endpoint.id]
        prepared = prepare_reference(endpoint.feature_stats)
        from_pandas = feature_drifts(prepared, frame, summaries=True)
        from_block = feature_drifts(prepared, frame, numbers=events.numbers_of(endpoint.id), summaries=True)
        assert repr(from_block) == repr(from_pandas)


def test_the_app_reads_the_block_and_stores_what_it_stores_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = []
    for with_blocks in (True, False):
        with monkeypatch.context() as patch:
            if with_blocks:  # the app must not go through pandas for the numeric columns
                patch.setattr(drift, "_number_block", pandas_read)
            stored.append(stored_results(tmp_path, with_blocks))
    assert stored[0] and stored[0] == stored[1]


def pandas_read(*_: object) -> None:
    raise AssertionError("numeric columns read through pandas")


def stored_results(tmp_path: Path, with_blocks: bool) -> list[tuple[object, ...]]:
    home = tmp_path / ("blocks" if with_blocks else "pandas")
    with Monitoring(home=str(home), clock=fixed_clock(LATER)) as mm:
        for i, name in enumerate(NAMES):
            mm.create_endpoint(name, reference=reference_frame(400, seed=i), label_names=["prediction"])
            mm.record_events(name, traffic_frame(80, WINDOW.start, WINDOW.end, seed=20 + i))
        events = mm.read_window(WINDOW)
        assert all(numbers_of(events, e) is not None for e in events)
        given = events if with_blocks else dict(events)  # a plain dict: the apps read pandas
        mm.run_window([HistogramDataDriftApplication()], WINDOW, given)
        return sorted(
            (mm.get_endpoint(r.endpoint_id).name, r.name, r.value, r.status, repr(r.extra_data))
            for r in mm.results.results(app="histogram-data-drift")
        )


def test_a_window_without_float_columns_has_no_blocks() -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    block = NumberBlock(frame, (), np.empty((2, 0)))
    assert block.select([]) is block.values
    assert WindowEvents({"e": frame}, {}).numbers_of("e") is None


def test_rows_of_many_chunks_land_in_their_sorted_places_with_nulls_as_nan() -> None:
    """The float columns, gathered batch by batch and sorted in place, give the same frame as
    sorting the concatenated rows with pandas, nulls read as NaN."""
    import pyarrow as pa

    from mm_dagster.storage.event_store import _Rows
    from mm_dagster.storage.float_block import FloatBlock, float_columns

    rng = np.random.default_rng(3)
    rows = 1_000
    owner = rng.integers(0, 7, rows)
    micros = rng.permutation(rows).astype(np.int64)
    x = rng.normal(size=rows)
    y = [
        None if missing else v
        for missing, v in zip(rng.random(rows) < 0.2, rng.normal(size=rows), strict=True)
    ]
    table = pa.table(
        {
            "timestamp": pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "x": pa.array(x),
            "y": pa.array(y, pa.float64()),
            "request_id": pa.array([f"r{i}" for i in range(rows)]),
        }
    )
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=97))
    assert chunked["x"].num_chunks > 5
    order = np.lexsort((micros, owner))

    def read(order: np.ndarray | None, owner: np.ndarray) -> _Rows:
        """The rows as a window read keeps them: the float columns gathered batch by batch."""
        block = FloatBlock(float_columns(chunked.schema), chunked.num_rows // 2)  # it grows
        for batch in chunked.to_batches():
            block.add(batch)
        others = chunked.drop_columns(list(block.names))
        return _Rows(others, order, owner, [str(i) for i in range(7)], [], block, chunked.column_names)

    frame, floats, values = read(order, owner[order]).to_pandas()
    expected = table.to_pandas().iloc[order].reset_index(drop=True)
    assert floats == ("x", "y")
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected, check_dtype=False)
    np.testing.assert_array_equal(values, expected[["x", "y"]].to_numpy(dtype=np.float64))
    _, _, unsorted_values = read(None, owner).to_pandas()
    np.testing.assert_array_equal(unsorted_values, table.to_pandas()[["x", "y"]].to_numpy(dtype=np.float64))


def test_a_read_for_model_columns_leaves_the_recorders_columns_out(mm: Monitoring) -> None:
    whole, model = mm.read_window(WINDOW), mm.read_window(WINDOW, columns="model")
    assert set(whole) == set(model)
    for endpoint_id, frame in whole.items():
        left = model[endpoint_id]
        assert {"request_id", "latency_us", "error"} <= set(frame.columns)
        assert list(left.columns) == [
            c for c in frame.columns if c not in ("request_id", "latency_us", "error")
        ]
        pd.testing.assert_frame_equal(left, frame[list(left.columns)])
        np.testing.assert_array_equal(
            numbers_of(model, endpoint_id).values, numbers_of(whole, endpoint_id).values
        )  # type: ignore[union-attr]
    with pytest.raises(MonitoringError, match="'all' or 'model'"):
        mm.read_window(WINDOW, columns="some")


def test_apps_reading_model_columns_store_what_they_store_from_every_column(tmp_path: Path) -> None:
    stored = []
    for columns in ("model", "all"):
        with Monitoring(home=str(tmp_path / columns), clock=fixed_clock(LATER)) as mm:
            for i, name in enumerate(NAMES):
                mm.create_endpoint(name, reference=reference_frame(400, seed=i), label_names=["prediction"])
                mm.record_events(name, traffic_frame(80, WINDOW.start, WINDOW.end, seed=20 + i))
            events = mm.read_window(WINDOW, columns=columns)
            assert ("request_id" in next(iter(events.values())).columns) == (columns == "all")
            mm.run_window([HistogramDataDriftApplication()], WINDOW, events)
            stored.append(
                sorted(
                    (mm.get_endpoint(r.endpoint_id).name, r.name, r.value, r.status, repr(r.extra_data))
                    for r in mm.results.results(app="histogram-data-drift")
                )
            )
    assert stored[0] and stored[0] == stored[1]
    assert event_columns_read([HistogramDataDriftApplication()]) == "model"
    assert event_columns_read([HistogramDataDriftApplication(), OperationalApplication()]) == "all"


def test_a_model_read_keeps_request_ids_when_labels_are_joined(tmp_path: Path) -> None:
    with Monitoring(home=str(tmp_path / "home"), clock=fixed_clock(LATER)) as mm:
        frame = binary_frame(60, seed=3)
        mm.create_endpoint("plain", reference=frame, label_names=OUTPUTS[BINARY.kind])
        assert not mm.endpoints.has_tasks()  # a task-less endpoint's task is JSON null
        mm.create_endpoint("labelled", reference=frame, label_names=OUTPUTS[BINARY.kind], task=BINARY)
        assert mm.endpoints.has_tasks()
        events = frame.drop(columns=["label"]).assign(
            request_id=[f"r{i}" for i in range(60)],
            timestamp=pd.Timestamp(WINDOW.start) + pd.to_timedelta(np.arange(60), unit="s"),
        )
        mm.record_events("labelled", events)
        mm.record_labels("labelled", frame[["label"]].assign(request_id=[f"r{i}" for i in range(60)]))
        (read,) = mm.read_window(WINDOW, columns="model").values()
    assert "request_id" in read.columns and "latency_us" not in read.columns
    assert read["label"].tolist() == frame["label"].tolist()
