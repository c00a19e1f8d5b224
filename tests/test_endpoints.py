import pytest

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError, UnknownEndpointError
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame


def test_create_get_list_delete(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    assert len(endpoint.id) == 32
    assert endpoint.feature_names == ["f0", "f1", "f2", "f3", "c0"]
    assert endpoint.label_names == ["prediction"]
    assert endpoint.column_types["c0"] == "string" and endpoint.column_types["f0"] == "float64"
    assert endpoint.model_uri == "s3://models/fraud/3"
    assert set(endpoint.feature_stats) == {"f0", "f1", "f2", "f3", "c0", "prediction"}
    assert endpoint.reference_rows == 5000
    assert mm.get_endpoint("fraud-model") == mm.get_endpoint(endpoint.id)
    assert [e.name for e in mm.list_endpoints()] == ["fraud-model"]
    mm.delete_endpoint("fraud-model")
    assert mm.list_endpoints() == []
    with pytest.raises(UnknownEndpointError, match="unknown endpoint 'fraud-model'"):
        mm.get_endpoint("fraud-model")


def test_create_is_get_or_create(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    again = mm.create_endpoint(
        "fraud-model",
        reference=reference_frame(5000, seed=1),
        label_names=["prediction"],
        model_name="fraud",
        model_version="3",
    )
    assert again == endpoint
    assert (
        mm.create_endpoint("fraud-model", feature_names=endpoint.feature_names, label_names=["prediction"]).id
        == endpoint.id
    )


def test_create_says_what_differs_instead_of_ignoring_it(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    with pytest.raises(MonitoringError, match=r"model_version='3' \(got '4'\).*update_reference"):
        mm.create_endpoint(
            "fraud-model",
            reference=reference_frame(5000, seed=1),
            label_names=["prediction"],
            model_version="4",
        )
    with pytest.raises(MonitoringError, match=r"a different reference \(version 1 is stored\)"):
        mm.create_endpoint("fraud-model", reference=reference_frame(100, seed=9), label_names=["prediction"])


def test_update_reference_keeps_history_and_results_carry_versions(
    mm: Monitoring, endpoint: ModelEndpoint
) -> None:
    from mm_dagster.applications import HistogramDataDriftApplication
    from mm_dagster.simulation import traffic_frame

    from .conftest import past_window

    first, second = past_window(90), past_window(60)
    app = HistogramDataDriftApplication()
    mm.record_events("fraud-model", traffic_frame(300, first.start, first.end, seed=1))
    mm.run_window([app], first)
    updated = mm.update_reference("fraud-model", reference_frame(3000, seed=4), model_version="4")
    assert (updated.reference_version, updated.model_version, updated.reference_rows) == (2, "4", 3000)
    assert updated.feature_stats != endpoint.feature_stats
    mm.record_events("fraud-model", traffic_frame(300, second.start, second.end, seed=2))
    mm.run_window([app], second)
    history = mm.endpoints.reference_history("fraud-model")
    assert [(h["version"], h["model_version"], h["reference_rows"]) for h in history] == [
        (1, "3", 5000),
        (2, "4", 3000),
    ]
    versions = {
        (r.window_start, r.model_version, r.reference_version) for r in mm.results.results(endpoint.id)
    }
    assert versions == {(first.start, "3", 1), (second.start, "4", 2)}
    assert (
        mm.create_endpoint(
            "fraud-model", reference=reference_frame(3000, seed=4), label_names=["prediction"]
        ).id
        == endpoint.id
    )


def test_conflicting_features_are_an_error(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    with pytest.raises(MonitoringError, match="exists with feature_names"):
        mm.create_endpoint("fraud-model", feature_names=["f0"], label_names=["prediction"])


@pytest.mark.parametrize("name", ["a/b", "../etc", "a..b", "has space", "x" * 129, "", "-lead"])
def test_bad_endpoint_names_never_become_paths(mm: Monitoring, name: str) -> None:
    with pytest.raises(MonitoringError, match="endpoint name"):
        mm.create_endpoint(name, feature_names=["x"])
    assert mm.list_endpoints() == []


def test_name_limits(mm: Monitoring) -> None:
    assert mm.create_endpoint("a" * 128, feature_names=["x"]).name == "a" * 128
    assert mm.create_endpoint("v1.2_model-x", feature_names=["x"]).name == "v1.2_model-x"


def test_reference_must_have_the_features(mm: Monitoring) -> None:
    with pytest.raises(MonitoringError, match="reference lacks features"):
        mm.create_endpoint("m", reference=reference_frame(10), feature_names=["f0", "nope"])


def test_endpoint_without_reference_has_no_stats(mm: Monitoring) -> None:
    ep = mm.create_endpoint("m", feature_names=["x", "y"], label_names=["p"])
    assert ep.feature_stats == {} and ep.column_types == {"x": "float64", "y": "float64", "p": "float64"}


@pytest.mark.parametrize(
    ("column", "match"),
    [
        ("request_id", "is reserved for the event's own fields"),
        ("timestamp", "is reserved for the event's own fields"),
        ("endpoint_id", "is reserved for the event's own fields"),
        ("../etc/passwd", "is not a valid column name"),
        ("a\nb", "is not a valid column name"),
        ("x" * 10_000, "is not a valid column name"),
        (" padded", "is not a valid column name"),
        ("__filename", "is not a valid column name"),
    ],
)
def test_reserved_and_invalid_column_names_are_rejected_at_creation(
    mm: Monitoring, column: str, match: str
) -> None:
    with pytest.raises(MonitoringError, match=match):
        mm.create_endpoint("m", feature_names=["ok", column])
    with pytest.raises(MonitoringError, match=match):
        mm.create_endpoint("m", feature_names=["ok"], label_names=[column])
    assert mm.list_endpoints() == []


def test_real_world_column_names_are_accepted(mm: Monitoring) -> None:
    names = ["petal length (cm)", "x.1", "Age", "loan_amnt", "é_score", "_private"]
    assert mm.create_endpoint("m", feature_names=names).feature_names == names
