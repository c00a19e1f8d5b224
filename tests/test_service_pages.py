"""The service's overview and endpoint pages and its results API, in process (FastAPI's
TestClient over real SQLite stores)."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.monitoring import Monitoring, StorageSettings
from mm_dagster.reports.overview_page import OverviewQuery, OverviewRow, select_rows, status_counts
from mm_dagster.service import ServiceSettings, create_app
from tests.conftest import NOW
from tests.service_data import DRIFT_FROM, WINDOWS, populate


@pytest.fixture
def client(mm: Monitoring, isolated_home: Path) -> Iterator[TestClient]:
    populate(mm)
    settings = ServiceSettings.resolve(
        storage=StorageSettings.resolve(home=str(isolated_home)),
        apps=["histogram-data-drift", "operational-health"],
        project="demo",
        thresholds={("histogram-data-drift", "general_drift"): (0.5, 0.7)},
    )
    with TestClient(create_app(settings, clock=fixed_clock(NOW))) as test_client:
        yield test_client


def test_overview_lists_every_endpoint_with_its_worst_status(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert "data-endpoint='model-0' data-status='detected'" in html
    assert "data-endpoint='model-1' data-status='no_detection'" in html
    # drifted endpoint first (sorted by status, worst first), linked to its page
    assert html.index("model-0") < html.index("model-1")
    assert "href='/endpoints/model-0'" in html
    assert "status-detected" in html and "<th>histogram-data-drift</th>" in html


def test_overview_filters_by_status_and_searches(client: TestClient) -> None:
    detected = client.get("/", params={"status": "detected"}).text
    assert "data-endpoint='model-0'" in detected and "data-endpoint='model-1'" not in detected
    searched = client.get("/", params={"q": "model-1"}).text
    assert "data-endpoint='model-1'" in searched and "data-endpoint='model-0'" not in searched


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "bad"}, "status filter 'bad'"),
        ({"sort": "nope"}, "sort key 'nope'"),
        ({"page": "0"}, "page must be >= 1"),
        ({"order": "sideways"}, "order 'sideways'"),
    ],
)
def test_overview_rejects_bad_parameters_clearly(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    answer = client.get("/", params=params)
    assert answer.status_code == 400
    assert message in answer.json()["detail"]


def test_overview_selection_sorts_filters_and_paginates() -> None:
    rows = [
        OverviewRow(f"id{i}", f"ep-{i:03d}", "m", "1", None, {"a": ResultStatusApp(i % 3)})
        for i in range(120)
    ]
    rows.append(OverviewRow("idx", "silent", "m", "1", None, {}))
    first, total = select_rows(
        rows, OverviewQuery(status="detected", sort="name", descending=False, page_size=25)
    )
    assert total == 40 and [r.name for r in first][:2] == ["ep-002", "ep-005"] and len(first) == 25
    last, _ = select_rows(
        rows, OverviewQuery(status="detected", sort="name", descending=False, page=2, page_size=25)
    )
    assert len(last) == 15 and last[-1].name == "ep-119"
    worst_first, _ = select_rows(rows, OverviewQuery(sort="status", page_size=500))
    assert [r.name for r in worst_first[:2]] == ["ep-002", "ep-005"]  # names ascending within a status
    assert worst_first[-1].name == "silent"
    assert status_counts(rows) == {
        "detected": 40,
        "potential_detection": 40,
        "no_detection": 40,
        "irrelevant": 0,
        "no_results": 1,
    }


def test_endpoint_page_shows_results_heatmap_traffic_and_thresholds(client: TestClient) -> None:
    page = client.get("/endpoints/model-0", params={"hours": 2})
    assert page.status_code == 200
    html = page.text
    for div in ("feature-heatmap", "result-histogram-data-drift-feature_drift", "traffic-events", "latency"):
        assert f'id="{div}"' in html
    assert "potential threshold 0.5" in html and "detected threshold 0.7" in html
    # heatmap cells link to the window pages
    assert "/endpoints/model-0/windows/" in html.replace("\\u002f", "/")
    assert "app=histogram-data-drift" in html
    assert "histogram-data-drift · feature_drift: detected" in html


def test_endpoint_page_range_and_errors(client: TestClient) -> None:
    start = (NOW - timedelta(minutes=10 * WINDOWS)).strftime("%Y-%m-%dT%H:%M")
    end = (NOW - timedelta(minutes=10 * (WINDOWS - DRIFT_FROM))).strftime("%Y-%m-%dT%H:%M")
    calm = client.get("/endpoints/model-0", params={"start": start, "end": end}).text
    assert "feature_drift: no detection" in calm
    assert client.get("/endpoints/nosuch").status_code == 404
    bad = client.get("/endpoints/model-0", params={"start": "yesterday"})
    assert bad.status_code == 400 and "'yesterday' is not an ISO time" in bad.json()["detail"]
    backwards = client.get("/endpoints/model-0", params={"start": end, "end": start})
    assert backwards.status_code == 400 and "is not before end" in backwards.json()["detail"]


def test_results_api_lists_endpoints_series_and_values(client: TestClient) -> None:
    endpoints = client.get("/v1/endpoints").json()
    assert [e["name"] for e in endpoints] == ["model-0", "model-1"]
    assert endpoints[0]["events_total"] == 300 * WINDOWS
    detail = client.get("/v1/endpoints/model-0").json()
    assert detail["feature_names"][:2] == ["f0", "f1"] or detail["feature_names"]
    series = client.get("/v1/endpoints/model-0/metrics").json()
    names = {s["full_name"] for s in series}
    assert "demo.histogram-data-drift.result.feature_drift" in names
    assert "demo.histogram-data-drift.metric.tvd_mean" in names
    start = (NOW - timedelta(hours=2)).isoformat()
    values = client.get(
        "/v1/endpoints/model-0/metrics-values",
        params=[
            ("name", "demo.histogram-data-drift.result.feature_drift"),
            ("name", "demo.histogram-data-drift.metric.tvd_mean"),
            ("start", start),
            ("end", NOW.isoformat()),
        ],
    ).json()
    result, metric = values
    assert result["type"] == "result" and result["data"] and len(result["values"]) == WINDOWS
    statuses = [v[2] for v in result["values"]]
    assert statuses[DRIFT_FROM:] == [2] * (WINDOWS - DRIFT_FROM) and max(statuses[:DRIFT_FROM]) < 2
    assert metric["type"] == "metric" and len(metric["values"][0]) == 2


def test_results_api_filters_and_errors(client: TestClient) -> None:
    start = (NOW - timedelta(hours=2)).isoformat()
    detected = client.get(
        "/v1/results", params={"start": start, "end": NOW.isoformat(), "min_status": "detected"}
    )
    rows = detected.json()
    assert rows and {r["endpoint"] for r in rows if r["name"] == "feature_drift"} == {"model-0"}
    assert all(r["status"] == "detected" for r in rows)
    assert client.get("/v1/endpoints/nosuch/metrics").status_code == 404
    bad = client.get("/v1/endpoints/model-0/metrics-values", params={"name": "tvd_mean"})
    assert bad.status_code == 400 and "<project>.<app>.<result|metric>.<name>" in bad.json()["detail"]
    assert client.get("/v1/results", params={"limit": 0}).status_code == 422


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/endpoints", "/v1/endpoints/{name}/metrics-values", "/v1/results"} <= set(paths)
    assert client.get("/static/plotly.min.js").headers["content-type"].startswith("application/javascript")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/results", {"end": "0001-01-01T00:03:19Z"}),  # the default day before it: before year 1
        ("/v1/results", {"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"}),
        ("/v1/results", {"end": "9999-12-31T23:00:00-05:00"}),
        ("/endpoints/model-0", {"end": "0001-01-01T01:00"}),
        ("/endpoints/model-0", {"start": "0001-01-01T00:00+02:00", "end": "0001-01-02T00:00"}),
    ],
)
def test_a_range_outside_the_years_1_to_9999_is_the_requests_error(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert "out of range" in answer.text or "before the year 1" in answer.text
