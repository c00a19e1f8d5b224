"""The dashboard in headless Chromium against `mm serve` on loopback: the overview's status
chips, a click on the per-feature drift heatmap opening that window's page."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mm_dagster.core.clock import fixed_clock
from mm_dagster.monitoring import Monitoring
from tests.browser import playwright_page
from tests.service_data import WINDOWS, populate, recent_boundary
from tests.service_server import running_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("browser") / "mm_home"
    now = recent_boundary()
    with Monitoring(home=str(home), clock=fixed_clock(now)) as mm:
        populate(mm, now=now, endpoints=3)
    with running_service(home) as base:
        yield base


def test_overview_shows_each_endpoints_status_chips(service: str) -> None:
    with playwright_page() as page:
        page.goto(f"{service}/")
        rows = page.locator("tr.endpoint")
        assert rows.count() == 3
        first = rows.nth(0)
        assert first.get_attribute("data-endpoint") == "model-0"
        drift_chip = first.locator("td.app[data-app='histogram-data-drift'] .chip")
        assert drift_chip.inner_text() == "detected"
        assert "rgb(198, 40, 40)" in drift_chip.evaluate("e => getComputedStyle(e).backgroundColor")
        calm = page.locator(
            "tr.endpoint[data-endpoint='model-1'] td.app[data-app='histogram-data-drift'] .chip"
        )
        assert calm.inner_text() == "no detection"
        page.click("a.filter:has-text('detected (1)')")
        assert page.locator("tr.endpoint").count() == 1


def test_heatmap_click_opens_the_window_page(service: str) -> None:
    now = recent_boundary()
    start = now - timedelta(minutes=10 * WINDOWS)
    with playwright_page() as page:
        page.goto(f"{service}/endpoints/model-0?start={start:%Y-%m-%dT%H:%M}&end={now:%Y-%m-%dT%H:%M}")
        heatmap = page.locator("#feature-heatmap")
        heatmap.locator(".nsewdrag").first.wait_for()
        box = heatmap.locator(".nsewdrag").first.bounding_box()
        assert box is not None
        # the last window's top row: feature f0, drifted. Plotly reports a click on the point it
        # hovers, so point at the cell until its hover label shows (as a user does), then click.
        x, y = box["x"] + box["width"] * (WINDOWS - 0.5) / WINDOWS, box["y"] + 8
        page.mouse.move(x, y)
        heatmap.locator(".hoverlayer .hovertext").first.wait_for()
        with page.expect_navigation():
            page.mouse.click(x, y)
        assert "/endpoints/model-0/windows/" in page.url and "app=histogram-data-drift" in page.url
        heading = page.locator("h1").inner_text()
        assert "model-0" in heading
        first_feature = page.locator("#features tr").nth(1)
        assert first_feature.locator("td.name").inner_text() in ("f0", "f1")
        assert "detected" in first_feature.inner_text()
