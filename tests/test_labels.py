"""Ground truth: the endpoint's task, labelled references, record_labels and the window join."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import ModelMonitoringApplicationBase, MonitoringApplicationContext
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import EventValidationError, MonitoringError, UnknownEndpointError
from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring

from .conftest import NOW, past_window
from .labelled_model import (
    BINARY,
    MULTICLASS,
    OUTPUTS,
    REGRESSION,
    as_events,
    as_labels,
    binary_frame,
    multiclass_frame,
    regression_frame,
)


def binary_endpoint(mm: Monitoring, name: str = "scorer", labelled_reference: bool = True) -> ModelEndpoint:
    reference = binary_frame(3000, seed=1)
    if not labelled_reference:
        reference = reference.drop(columns="label")
    return mm.create_endpoint(name, reference=reference, label_names=OUTPUTS[TaskKind.binary], task=BINARY)


def served(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window, rows: int = 200, seed: int = 5
) -> pd.DataFrame:
    frame = binary_frame(rows, seed=seed)
    mm.record_events(endpoint.name, as_events(frame, window.start))
    return frame


# -- the task and the labelled reference -------------------------------------------------------


def test_the_task_is_persisted_and_the_labelled_reference_gets_its_performance(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    assert endpoint.feature_names == ["f0", "f1", "f2"]  # the target is not taken for a feature
    stored = mm.get_endpoint("scorer")
    assert stored.task == BINARY
    performance = stored.reference_performance
    assert performance is not None and performance["rows"] == 3000
    assert 0.7 < performance["metrics"]["accuracy"] < 0.9
    assert set(performance["unit_sd"]) >= {"accuracy", "f1", "roc_auc"}
    sample = mm.references.load(stored.id)
    assert sample is not None and "label" in sample.columns  # the target is kept in the sample
    (history,) = mm.endpoints.reference_history("scorer")
    assert history["performance"] == performance


def test_update_reference_recomputes_the_reference_performance(mm: Monitoring) -> None:
    first = binary_endpoint(mm)
    worse = binary_frame(3000, seed=2, flip=0.2)
    updated = mm.update_reference("scorer", worse, model_version="2")
    assert updated.reference_performance is not None and first.reference_performance is not None
    assert (
        updated.reference_performance["metrics"]["accuracy"]
        < first.reference_performance["metrics"]["accuracy"]
    )
    history = mm.endpoints.reference_history("scorer")
    assert [h["performance"]["rows"] for h in history] == [3000, 3000]
    assert history[1]["performance"] == updated.reference_performance


def test_a_reference_without_labels_has_no_performance(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm, labelled_reference=False)
    assert endpoint.task == BINARY and endpoint.reference_performance is None


def test_a_task_is_declared_on_an_existing_endpoint_once(mm: Monitoring) -> None:
    reference = binary_frame(500, seed=1)
    plain = mm.create_endpoint(
        "scorer", reference=reference.drop(columns="label"), label_names=OUTPUTS[TaskKind.binary]
    )
    assert plain.task is None
    declared = mm.create_endpoint(
        "scorer", feature_names=plain.feature_names, label_names=plain.label_names, task=BINARY
    )
    assert declared.task == BINARY and declared.id == plain.id
    assert declared.reference_performance is None and "label" not in mm.references.columns(plain.id)
    labelled = mm.create_endpoint("scorer", reference=reference, label_names=plain.label_names, task=BINARY)
    assert labelled.reference_performance is not None  # the same reference, now with its labels
    assert mm.endpoints.reference_history("scorer")[0]["performance"] == labelled.reference_performance
    assert "label" in mm.references.columns(plain.id)  # and the sample keeps the target
    other = ModelTask(TaskKind.binary, "prediction", "label", {"0": "score"})
    with pytest.raises(MonitoringError, match=r"exists with task .* a model that predicts something else"):
        mm.create_endpoint(
            "scorer", feature_names=plain.feature_names, label_names=plain.label_names, task=other
        )


@pytest.mark.parametrize(
    ("task", "labels", "message"),
    [
        (
            ModelTask(TaskKind.binary, "pred", "label", {"1": "score"}),
            ["prediction", "score"],
            r"\['pred'\] are not among",
        ),
        (
            ModelTask(TaskKind.binary, "prediction", "f0", {"1": "score"}),
            ["prediction", "score"],
            "target 'f0' is a feature",
        ),
        (
            ModelTask(TaskKind.binary, "prediction", "timestamp", {"1": "score"}),
            ["prediction", "score"],
            "reserved",
        ),
    ],
)
def test_a_task_that_does_not_fit_the_outputs_is_refused(
    mm: Monitoring, task: ModelTask, labels: list[str], message: str
) -> None:
    with pytest.raises(MonitoringError, match=message):
        mm.create_endpoint(
            "scorer",
            reference=binary_frame(100, seed=1),
            feature_names=["f0", "f1", "f2"],
            label_names=labels,
            task=task,
        )


def test_a_regression_task_needs_a_numeric_prediction(mm: Monitoring) -> None:
    frame = multiclass_frame(100, seed=1)
    with pytest.raises(MonitoringError, match="regression task needs a numeric prediction column"):
        mm.create_endpoint("reg", reference=frame, label_names=OUTPUTS[TaskKind.multiclass], task=REGRESSION)


# -- record_labels -----------------------------------------------------------------------------


def test_labels_are_joined_to_their_events_in_the_window(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    window = past_window(60)
    frame = served(mm, endpoint, window)
    labels = as_labels(frame).iloc[:150]
    receipt = mm.record_labels("scorer", labels)
    assert (receipt.stored, receipt.matched, receipt.unmatched) == (150, 150, 0)
    assert receipt.windows == [window.start]
    sample = mm.read_window(window)[endpoint.id]
    assert sample["label"].dtype == "float64"
    np.testing.assert_array_equal(sample["label"].iloc[:150].to_numpy(), frame["label"].iloc[:150].to_numpy())
    assert sample["label"].iloc[150:].isna().all()  # null where not labelled yet
    (report,) = mm.run_window([_LabelledFraction()], window, mm.read_window(window))
    assert report.outputs[endpoint.id][1][0].value == pytest.approx(0.75)


class _LabelledFraction(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        return {"fraction": monitoring_context.labelled_fraction}


def test_a_later_label_for_a_request_replaces_the_earlier(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    window = past_window(60)
    served(mm, endpoint, window, rows=10)
    mm.record_labels("scorer", pd.DataFrame({"request_id": ["r3"], "label": [0.0]}))
    mm.record_labels("scorer", pd.DataFrame({"request_id": ["r3"], "label": [1.0]}))
    stored = mm.labels.labels_of(endpoint.id)
    assert list(stored["request_id"]) == ["r3"] and list(stored["value_number"]) == [1.0]
    assert mm.read_window(window)[endpoint.id]["label"].iloc[3] == 1.0
    assert mm.label_summary("scorer").labels == 1


def test_labels_without_an_event_are_kept_counted_and_matched_when_it_lands(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    window = past_window(60)
    frame = binary_frame(20, seed=3)
    receipt = mm.record_labels("scorer", as_labels(frame))
    assert (receipt.matched, receipt.unmatched) == (0, 20)
    assert receipt.unmatched_ids[:2] == ["r0", "r1"]
    summary = mm.label_summary("scorer")
    assert (summary.labels, summary.matched, summary.unmatched) == (20, 0, 20)
    assert mm.labels.unmatched_counts() == {endpoint.id: 20}
    mm.record_events("scorer", as_events(frame, window.start))  # the predictions land later
    assert mm.label_summary("scorer").unmatched == 0
    sample = mm.read_window(window)[endpoint.id]
    np.testing.assert_array_equal(sample["label"].to_numpy(), frame["label"].to_numpy())


def test_match_labels_searches_stored_events_again(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    window = past_window(60)
    frame = binary_frame(10, seed=3)
    mm.record_labels("scorer", as_labels(frame))
    mm.ingestor.after_store.clear()  # as if the matching after the event batch had failed
    mm.record_events("scorer", as_events(frame, window.start))
    assert mm.label_summary("scorer").unmatched == 10
    assert mm.match_labels("scorer") == 10
    assert mm.label_summary("scorer").unmatched == 0
    assert mm.read_window(window)[endpoint.id]["label"].notna().all()


def test_a_batch_of_labels_is_all_or_none(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    served(mm, endpoint, past_window(60), rows=50)
    labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(50)], "label": [1.0] * 49 + ["yes"]})
    with pytest.raises(EventValidationError, match=r"field 'label', row 49: expected a number, got 'yes'"):
        mm.record_labels("scorer", labels)
    assert mm.label_summary("scorer").labels == 0
    assert mm.labels.labels_of(endpoint.id).empty


def test_a_failed_write_stores_nothing(mm: Monitoring, monkeypatch: pytest.MonkeyPatch) -> None:
    from mm_dagster.storage import label_store

    endpoint = binary_endpoint(mm)
    window = past_window(60)
    frame = served(mm, endpoint, window, rows=30)
    before = mm.arrivals.spans(events_from=window.start, events_before=window.end)

    def broken_upsert(conn, table, rows):  # type: ignore[no-untyped-def]
        conn.execute(table.insert(), rows[:5])  # part of the batch, then the database fails
        raise RuntimeError("database went away")

    monkeypatch.setattr(label_store, "upsert", broken_upsert)
    with pytest.raises(RuntimeError, match="database went away"):
        mm.record_labels("scorer", as_labels(frame))
    assert mm.labels.labels_of(endpoint.id).empty
    assert mm.arrivals.spans(events_from=window.start, events_before=window.end) == before


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            pd.DataFrame({"request_id": ["r1", "r2", "r1"], "label": [1.0, 0.0, 1.0]}),
            r"field 'request_id', row 0: request_id 'r1' appears more than once in the batch "
            r"\(rows \[0, 2\]\)",
        ),
        (
            pd.DataFrame({"request_id": ["r1", "r2"], "label": [1.0, np.nan]}),
            r"field 'label', row 1: missing label",
        ),
        (
            pd.DataFrame({"request_id": ["r1", ""], "label": [1.0, 0.0]}),
            r"field 'request_id', row 1: empty request_id",
        ),
        (
            pd.DataFrame({"request_id": ["r1"], "label": [np.inf]}),
            r"field 'label', row 0: expected a finite number",
        ),
        (pd.DataFrame({"request_id": ["r1"]}), r"field 'label': missing from the labels"),
        (pd.DataFrame({"label": [1.0]}), r"field 'request_id': missing from the labels"),
        (
            pd.DataFrame({"request_id": ["r1"], "label": [1.0], "score": [0.3]}),
            r"field 'score': is not a label column",
        ),
        (
            pd.DataFrame({"request_id": ["r1"], "label": [1.0], "timestamp": [NOW + timedelta(hours=1)]}),
            r"field 'timestamp', row 0: timestamp more than 0:05:00 in the future",
        ),
    ],
)
def test_bad_labels_are_refused_naming_field_and_row(
    mm: Monitoring, labels: pd.DataFrame, message: str
) -> None:
    binary_endpoint(mm)
    with pytest.raises(EventValidationError, match=message):
        mm.record_labels("scorer", labels)
    assert mm.label_summary("scorer").labels == 0


def test_labels_for_a_regression_endpoint_are_numbers(mm: Monitoring) -> None:
    mm.create_endpoint(
        "reg", reference=regression_frame(500, seed=1), label_names=["prediction"], task=REGRESSION
    )
    with pytest.raises(
        EventValidationError, match=r"row 1: expected a number, got 'cat' \(a regression endpoint"
    ):
        mm.record_labels("reg", pd.DataFrame({"request_id": ["a", "b"], "label": [1.5, "cat"]}))
    with pytest.raises(EventValidationError, match=r"row 0: expected a number, got True \(a regression"):
        mm.record_labels("reg", pd.DataFrame({"request_id": ["a"], "label": [True]}))


def test_multiclass_labels_are_among_the_task_classes(mm: Monitoring) -> None:
    mm.create_endpoint(
        "multi",
        reference=multiclass_frame(500, seed=1),
        label_names=OUTPUTS[TaskKind.multiclass],
        task=MULTICLASS,
    )
    with pytest.raises(EventValidationError, match=r"row 1: class 'd' is not one of the task's classes"):
        mm.record_labels("multi", pd.DataFrame({"request_id": ["a", "b"], "label": ["a", "d"]}))
    with pytest.raises(EventValidationError, match=r"row 0: expected a string, got 3"):
        mm.record_labels("multi", pd.DataFrame({"request_id": ["a"], "label": [3]}, dtype=object))
    mm.record_labels("multi", pd.DataFrame({"request_id": ["a", "b"], "label": ["a", "c"]}))
    assert mm.label_summary("multi").labels == 2


def test_labels_for_unknown_deleted_or_taskless_endpoints_are_refused(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    labels = pd.DataFrame({"request_id": ["r1"], "label": [1.0]})
    with pytest.raises(UnknownEndpointError, match="unknown endpoint 'nobody'"):
        mm.record_labels("nobody", labels)
    mm.record_labels(endpoint, labels)
    mm.delete_endpoint("scorer")
    with pytest.raises(UnknownEndpointError, match=f"unknown endpoint '{endpoint.id}'"):
        mm.record_labels(endpoint, labels)  # the object of a deleted endpoint
    assert mm.labels.labels_of(endpoint.id).empty  # its labels went with it
    mm.create_endpoint(
        "plain",
        reference=binary_frame(100, seed=1).drop(columns="label"),
        label_names=["prediction", "score"],
    )
    with pytest.raises(MonitoringError, match=r"'plain' .* declares no task"):
        mm.record_labels("plain", labels)


def test_label_arrivals_are_not_counted_as_events(mm: Monitoring) -> None:
    endpoint = binary_endpoint(mm)
    window = past_window(60)
    frame = served(mm, endpoint, window, rows=40)
    coverage_before = mm.window_coverage(window.start, window.end, 10)
    mm.record_labels("scorer", as_labels(frame))
    assert mm.window_coverage(window.start, window.end, 10) == coverage_before
    assert mm.arrivals.event_counts(endpoint.id, window.start, window.end) == {window.start: 40}
    spans = mm.arrivals.spans(events_from=window.start, events_before=window.end)
    assert sum(s.events for s in spans) == 80  # the controller counts events and labels


def test_labels_of_string_and_bool_predictions_keep_their_type(mm: Monitoring) -> None:
    multi = mm.create_endpoint(
        "multi",
        reference=multiclass_frame(500, seed=1),
        label_names=OUTPUTS[TaskKind.multiclass],
        task=MULTICLASS,
    )
    window = past_window(60)
    frame = multiclass_frame(30, seed=4)
    mm.record_events("multi", as_events(frame, window.start))
    mm.record_labels("multi", as_labels(frame).iloc[:20])
    sample = mm.read_window(window)[multi.id]
    assert isinstance(sample["label"].dtype, pd.StringDtype)
    assert list(sample["label"].iloc[:20]) == list(frame["label"].iloc[:20])
    assert sample["label"].iloc[20:].isna().all()

    flags = binary_frame(200, seed=1).assign(
        prediction=lambda d: d["prediction"] > 0, label=lambda d: d["label"] > 0
    )
    boolean = mm.create_endpoint(
        "flags",
        reference=flags,
        label_names=["prediction", "score"],
        task=ModelTask(TaskKind.binary, "prediction", "label", {"True": "score"}),
    )
    mm.record_events("flags", as_events(flags.iloc[:10], window.start))
    mm.record_labels("flags", as_labels(flags.iloc[:10]))
    labels = mm.read_window(window)[boolean.id]["label"]
    assert labels.dtype == "boolean" and list(labels) == list(flags["label"].iloc[:10])
    assert boolean.reference_performance is not None


def test_labels_far_after_the_prediction_are_found_within_the_horizon(isolated_home) -> None:  # type: ignore[no-untyped-def]
    window = past_window(60 * 24 * 3)  # three days before NOW
    with Monitoring(home=str(isolated_home), clock=fixed_clock(window.end)) as then:
        endpoint = binary_endpoint(then)
        frame = served(then, endpoint, window, rows=30)
    with Monitoring(
        home=str(isolated_home), clock=fixed_clock(NOW), label_horizon=timedelta(days=2)
    ) as short:
        assert short.record_labels("scorer", as_labels(frame)).unmatched == 30
    with Monitoring(home=str(isolated_home), clock=fixed_clock(NOW)) as default:
        assert default.match_labels("scorer") == 30
        assert default.read_window(window)[endpoint.id]["label"].notna().all()
