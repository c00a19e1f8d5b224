"""The window page served on request (`GET /endpoints/{name}/windows/{key}`) from stored results
and histograms, and the Dagster metadata links that lead to it."""

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from dagster import instance_for_test
from fastapi.testclient import TestClient

from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring, StorageSettings
from mm_dagster.service import ServiceSettings, create_app
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .conftest import NOW, materialize_window, past_window
from .service_server import running_service
from .test_segments import frame as segment_frame
from .test_segments import traffic as segment_traffic

APP = HistogramDataDriftApplication.NAME


def windows(n: int) -> list[Window]:
    end = Window.containing(NOW, 10).start
    return [
        Window(end - timedelta(minutes=10 * (n - i)), end - timedelta(minutes=10 * (n - i - 1)))
        for i in range(n)
    ]


def page_path(endpoint: str, window: Window, app: str = APP) -> str:
    return f"/endpoints/{endpoint}/windows/{quote(window.key, safe='')}?app={app}"


@pytest.fixture
def drifted(mm: Monitoring) -> list[Window]:
    """Three windows of `fraud`, the last with f0 and f1 shifted; all analysed."""
    mm.create_endpoint("fraud", reference=reference_frame(8000, seed=1), label_names=["prediction"])
    ws = windows(3)
    for i, w in enumerate(ws):
        shape = TrafficShape(mean_shift=1.0, drifted_features=2) if i == 2 else TrafficShape()
        mm.record_events("fraud", traffic_frame(400, w.start, w.end, shape, seed=i))
        mm.run_window([HistogramDataDriftApplication()], w)
    return ws


@pytest.fixture
def client(isolated_home: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(
        storage=StorageSettings.resolve(home=str(isolated_home)), dagster_url="http://dagster.example:3000"
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def feature_rows(html: str) -> list[tuple[str, str, str]]:
    """(feature, tested by, status) per row of the features table."""
    table = html.split("id='features'")[1].split("</table>")[0]
    return re.findall(
        r"<tr><td class='name'>([^<]+)</td><td>[^<]*</td><td>([^<]*)</td>.*?>(\w+)</td></tr>", table
    )


def test_drifted_window_lists_drifting_features_first(drifted: list[Window], client: TestClient) -> None:
    response = client.get(page_path("fraud", drifted[-1]))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    rows = feature_rows(html)
    assert {r[0] for r in rows[:2]} == {"f0", "f1"}
    assert rows[0][1:] == ("feature_drift", "detected") and rows[1][2] == "detected"
    assert [r[2] for r in rows[2:]] == ["no_detection"] * 4
    assert ("prediction", "prediction_drift", "no_detection") in rows
    headline = html.split("id='headline'>")[1].split("</p>")[0]
    # each status named with its result: feature_drift flags the features, general_drift is its own test
    assert re.search(
        r"feature_drift <span class='chip'[^>]*>detected</span>: drifting f[01], f[01]", headline
    )
    assert re.search(r"general_drift <span class='chip'[^>]*>\w+</span>", headline)
    assert "400 events" in headline
    assert html.count('class="plotly-graph-div"') == 6 and "/static/plotly.min.js" in html


def test_previous_next_endpoint_and_dagster_links(drifted: list[Window], client: TestClient) -> None:
    html = client.get(page_path("fraud", drifted[1])).text
    links = dict(re.findall(r"<a id='([\w-]+)' href='([^']+)'", html))
    assert set(links) == {"endpoint-link", "previous-window", "next-window", "dagster-runs"}
    assert links["endpoint-link"] == "/endpoints/fraud"
    for key, window in (("previous-window", drifted[0]), ("next-window", drifted[2])):
        assert links[key] == page_path("fraud", window).replace("&", "&amp;")
        assert client.get(links[key].replace("&amp;", "&")).status_code == 200
    partition = quote(drifted[1].key, safe="")
    assert links["dagster-runs"] == (
        f"http://dagster.example:3000/runs?q%5B%5D=tag%3Adagster%2Fpartition%3D{partition}"
    )
    first = client.get(page_path("fraud", drifted[0])).text
    assert "previous-window" not in first and "next-window" in first


def test_unknown_endpoint_nothing_stored_and_malformed_keys(
    drifted: list[Window], client: TestClient
) -> None:
    response = client.get(page_path("nobody", drifted[0]))
    assert response.status_code == 404 and response.json()["detail"] == "unknown endpoint 'nobody'"
    earlier = Window(drifted[0].start - timedelta(hours=1), drifted[0].end - timedelta(hours=1))
    response = client.get(page_path("fraud", earlier))
    assert response.status_code == 404
    assert (
        response.json()["detail"] == f"nothing stored for endpoint 'fraud', app '{APP}', window {earlier.key}"
    )
    assert client.get(page_path("fraud", drifted[0], app="data-quality")).status_code == 404
    response = client.get(f"{page_path('fraud', drifted[0])}&segment=%7B%22country%22%3A%22DE%22%7D")
    assert response.status_code == 404 and 'segment \'{"country":"DE"}\'' in response.json()["detail"]
    response = client.get("/endpoints/fraud/windows/yesterday")
    assert (
        response.status_code == 422
        and "window key 'yesterday' is not of the form" in response.json()["detail"]
    )
    response = client.get("/endpoints/fraud/windows/2026-11-20-11%3A55")
    assert response.status_code == 422 and "not aligned to base_period=10" in response.json()["detail"]


class RowCount(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        return {"rows": float(len(monitoring_context.sample_df))}


def test_window_of_an_app_without_histograms_shows_its_metrics(mm: Monitoring, client: TestClient) -> None:
    mm.create_endpoint("fraud", reference=reference_frame(1000, seed=1))
    (w,) = windows(1)
    mm.record_events("fraud", traffic_frame(40, w.start, w.end, seed=1))
    mm.run_window([RowCount()], w)
    html = client.get(page_path("fraud", w, app="row-count")).text
    assert "<td class='name'>rows</td><td>40</td>" in html and "id='features'" not in html
    assert "No results stored for this window." in html


@pytest.mark.slow  # materializes through Dagster and starts the service
def test_dagster_metadata_links_resolve_on_the_running_service(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(isolated_home)
    window = past_window(60)
    with Monitoring(home=home) as mm:
        mm.create_endpoint("calm", reference=reference_frame(4000, seed=1), label_names=["prediction"])
        mm.create_endpoint("drifty", reference=reference_frame(4000, seed=2), label_names=["prediction"])
        mm.record_events("calm", traffic_frame(300, window.start, window.end, seed=1))
        shape = TrafficShape(mean_shift=3.0, drifted_features=4)
        mm.record_events("drifty", traffic_frame(300, window.start, window.end, shape, seed=2))
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=home))
    with running_service(isolated_home) as base, instance_for_test() as instance:
        monkeypatch.setenv("MM_UI_URL", base)
        result = materialize_window(defs, window.key, instance, home)
        metadata = {
            k: v.value
            for m in result.get_asset_materialization_events()
            for k, v in m.materialization.metadata.items()
        }
        check = result.get_asset_check_evaluations()[0].metadata
        urls = {k: v for k, v in metadata.items() if isinstance(v, str) and "://" in v}
        assert set(urls) == {"page_drifty", "overview"}  # the flagged endpoint only
        assert "file://" not in str(metadata) and "file://" not in str(check)
        assert check["page_drifty"].value == urls["page_drifty"]
        for url in urls.values():
            assert urlsplit(url).scheme == "http"
        page = httpx.get(urls["page_drifty"], timeout=30)
        assert page.status_code == 200 and "drifty: window" in page.text
        assert "<td class='name'>f0</td>" in page.text
        overview = httpx.get(urls["overview"], timeout=30)
        assert overview.status_code == 200 and "data-endpoint='drifty'" in overview.text


def test_a_segments_window_page(mm: Monitoring, client: TestClient) -> None:
    mm.create_endpoint("shop", reference=segment_frame(40_000, seed=1), segment_columns=["country"])
    (w,) = windows(1)
    mm.record_events("shop", segment_traffic(w, 4000, seed=3, de_shift=3.0))
    mm.run_window([HistogramDataDriftApplication()], w)
    (result,) = mm.results.results(name="feature_drift", segment='{"country":"DE"}')
    parts = urlsplit(result.extra_data["report"])
    html = client.get(f"{parts.path}?{parts.query}").text
    assert "segment <b>{&quot;country&quot;:&quot;DE&quot;}</b>" in html
    rows = feature_rows(html)
    assert {r[0] for r in rows[:2]} == {"f0", "f1"} and rows[0][2] == "detected"  # DE's shift
    whole = client.get(page_path("shop", w)).text
    assert re.search(r"<td class='name'>f0</td>.*?<td>4000</td>", whole)  # every row, not DE's
