"""The default app's pages: window histograms stored on every window and the window page
rendered by the service on request (headless Chromium checks what rendered); the endpoint page
written by `mm report`."""

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .browser import rendered_dom, screenshot
from .conftest import NOW
from .service_server import running_service


def uri_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def simulate(mm: Monitoring, windows: int = 12, drift_from: int = 8) -> list[Window]:
    mm.create_endpoint("fraud", reference=reference_frame(8000, seed=1), label_names=["prediction"])
    end = Window.containing(NOW, 10).start
    out = []
    for i in range(windows):
        w = Window(
            end - timedelta(minutes=10 * (windows - i)), end - timedelta(minutes=10 * (windows - i - 1))
        )
        shape = TrafficShape(mean_shift=1.0, drifted_features=2) if i >= drift_from else TrafficShape()
        mm.record_events("fraud", traffic_frame(400, w.start, w.end, shape, seed=i))
        out.append(w)
    return out


def test_counts_stored_on_every_window_and_the_report_is_the_window_page(mm: Monitoring) -> None:
    windows = simulate(mm)
    app = HistogramDataDriftApplication()
    reports = [mm.run_window([app], w)[0] for w in windows]
    endpoint_id = mm.get_endpoint("fraud").id
    assert all(set(r.histograms) == {endpoint_id} for r in reports)  # calm windows too
    assert not any(r.artifacts for r in reports)  # no HTML rendered at run time
    (feature_drift,) = mm.results.results(
        app=app.name, name="feature_drift", start=windows[9].start, end=windows[9].end
    )
    assert feature_drift.extra_data["report"] == (
        f"http://127.0.0.1:8080/endpoints/fraud/windows/{windows[9].key.replace(':', '%3A')}"
        "?app=histogram-data-drift"
    )
    never = HistogramDataDriftApplication(drift_report="never")
    assert not mm.run_window([never], windows[-1])[0].histograms
    (feature_drift,) = mm.results.results(
        app=app.name, name="feature_drift", start=windows[-1].start, end=windows[-1].end
    )
    assert feature_drift.extra_data["report"] is None


def test_report_link_follows_mm_ui_url(mm: Monitoring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_UI_URL", "https://monitoring.example.com/mm/")
    windows = simulate(mm, windows=1, drift_from=1)
    mm.run_window([HistogramDataDriftApplication()], windows[0])
    (result,) = mm.results.results(name="feature_drift")
    assert result.extra_data["report"].startswith(
        "https://monitoring.example.com/mm/endpoints/fraud/windows/"
    )


@pytest.mark.slow  # starts the service, drives headless Chromium
def test_window_page_renders_table_and_overlaid_histograms(
    mm: Monitoring, isolated_home: Path, tmp_path: Path
) -> None:
    windows = simulate(mm)
    app = HistogramDataDriftApplication()
    for w in windows[-2:]:
        mm.run_window([app], w)
    (result,) = mm.results.results(
        app=app.name, name="feature_drift", start=windows[-1].start, end=windows[-1].end
    )
    with running_service(isolated_home) as base:
        parts = urlsplit(result.extra_data["report"])
        url = f"{base}{parts.path}?{parts.query}"
        dom = rendered_dom(url)
        screenshot(url, tmp_path / "window.png")
    rows = re.findall(r"<tr><td class=\"name\">([^<]+)</td>", dom.split('id="features"')[1])
    assert set(rows) == {"f0", "f1", "f2", "f3", "c0", "prediction"}
    assert set(rows[:2]) == {"f0", "f1"}  # the drifting features first
    assert dom.count("background:#c62828") >= 3  # feature_drift and its two detected features
    plots = re.findall(r'id="hist-\d+" class="plotly-graph-div[^"]*js-plotly-plot', dom)
    assert len(plots) == 6  # plotly (served by the service) drew every histogram
    assert dom.count('class="main-svg"') >= 12
    assert dom.count(">reference<") >= 6 and dom.count(">window<") >= 6  # legends
    assert dom.count(">share of rows<") == 6 and ">bin midpoint<" in dom and ">category<" in dom
    assert "previous-window" in dom and "next-window" not in dom  # the newest stored window
    assert (tmp_path / "window.png").stat().st_size > 20_000


@pytest.mark.slow  # drives headless Chromium
def test_endpoint_page_renders_timelines_and_traffic(mm: Monitoring, tmp_path: Path) -> None:
    windows = simulate(mm, windows=12)
    app = HistogramDataDriftApplication(drift_report="never")
    for w in windows:
        mm.run_window([app], w)
    page = uri_path(mm.write_endpoint_report("fraud", hours=1.5, now=windows[-1].end))
    dom = rendered_dom(page)
    for div in ("general-drift", "feature-drift", "traffic"):
        assert re.search(rf'id="{div}" class="plotly-graph-div[^"]*js-plotly-plot', dom), div
    assert "general_drift (mean of Hellinger and TVD means)" in dom
    assert ">detected<" in dom and ">potential<" in dom  # the threshold lines' labels
    assert "previous period" in dom
    assert "9 windows · 3600 events (+200% vs the previous period)" in dom


def test_endpoint_reports_of_other_ranges_are_kept(mm: Monitoring) -> None:
    windows = simulate(mm, windows=3)
    for w in windows:
        mm.run_window([HistogramDataDriftApplication(drift_report="never")], w)
    end = windows[-1].end
    day = uri_path(mm.write_endpoint_report("fraud", hours=24, now=end))
    half = uri_path(mm.write_endpoint_report("fraud", hours=0.5, now=end))
    later = uri_path(mm.write_endpoint_report("fraud", hours=24, now=end + timedelta(hours=1)))
    assert day.name == "endpoint-report-fraud-24h-to-20261120T1200.html"
    assert half.name == "endpoint-report-fraud-0.5h-to-20261120T1200.html"
    assert len({day, half, later}) == 3 and all(p.exists() for p in (day, half, later))
    assert "3 windows" in half.read_text() and day.read_text() != half.read_text()
    with pytest.raises(Exception, match="hours must be > 0"):
        mm.write_endpoint_report("fraud", hours=0, now=end)
