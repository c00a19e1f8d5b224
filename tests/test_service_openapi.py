"""schemathesis against the running service's /openapi.json: no generated request gets a
server error, and every answer matches the documented status codes and response schemas."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from mm_dagster.core.clock import fixed_clock
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage.api_tokens import PROJECT_SCOPE, ApiTokenStore
from tests.service_data import populate, recent_boundary
from tests.service_server import running_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service_schema(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("openapi") / "mm_home"
    now = recent_boundary()
    with Monitoring(home=str(home), clock=fixed_clock(now)) as mm:
        populate(mm, now=now)
        secret = ApiTokenStore(mm.engine).create("schemathesis", PROJECT_SCOPE).secret
    with running_service(home) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        yield schema, {"Authorization": f"Bearer {secret}"}


def test_no_generated_request_gets_a_server_error(
    service_schema: tuple[schemathesis.BaseSchema, dict[str, str]],
) -> None:
    """Writes carry a valid project token, so generated bodies reach the ingestion's checks."""
    schema, auth = service_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    answered: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy(), real_endpoint=st.booleans())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case, real_endpoint: bool) -> None:
            if real_endpoint and case.path_parameters and "name" in case.path_parameters:
                case.path_parameters["name"] = "model-0"
            checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
            response = case.call_and_validate(checks=checks, headers=auth)
            answered.setdefault(case.operation.label, set()).add(response.status_code)

        call()
    assert set(answered) == {operation.label for operation in operations}
    assert all(codes for codes in answered.values())
    assert 200 in answered["GET /v1/endpoints/{name}/metrics"]
    assert answered["POST /v1/endpoints/{name}/events"] - {404}, "no generated batch reached validation"
