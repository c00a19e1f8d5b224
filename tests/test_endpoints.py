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
        "fraud-model", reference=reference_frame(100, seed=9), label_names=["prediction"]
    )
    assert again.id == endpoint.id
    assert again.feature_stats == endpoint.feature_stats  # the first reference is kept


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
