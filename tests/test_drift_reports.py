"""The default app's drift pages, rendered in headless Chromium and checked on what rendered."""

import re
from datetime import timedelta
from pathlib import Path

import pytest

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .browser import rendered_dom, screenshot
from .conftest import NOW


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


def test_reports_only_on_detection_by_default(mm: Monitoring) -> None:
    windows = simulate(mm)
    app = HistogramDataDriftApplication()
    reports = [mm.run_window([app], w)[0] for w in windows]
    with_pages = [i for i, r in enumerate(reports) if r.artifacts]
    assert with_pages == list(range(8, 12))
    (feature_drift,) = [
        r
        for r in mm.results.results(
            app=app.name, name="feature_drift", start=windows[9].start, end=windows[9].end
        )
    ]
    assert feature_drift.extra_data["report"].endswith(".html")
    never = HistogramDataDriftApplication(drift_report="never")
    assert not mm.run_window([never], windows[-1])[0].artifacts


@pytest.mark.slow  # drives headless Chromium
def test_window_page_renders_table_and_overlaid_histograms(mm: Monitoring, tmp_path: Path) -> None:
    windows = simulate(mm)
    (report,) = mm.run_window([HistogramDataDriftApplication()], windows[-1])
    (uri,) = report.artifacts.values()
    page = uri_path(uri)
    assert (page.parent / "plotly.min.js").exists()  # no CDN: pages open offline
    dom = rendered_dom(page)
    rows = re.findall(r"<tr><td class=\"name\">([^<]+)</td>", dom)
    assert set(rows) == {"f0", "f1", "f2", "f3", "c0", "prediction"}
    assert rows[:2] == ["f1", "f0"] or rows[:2] == ["f0", "f1"]  # sorted by TVD, drifting first
    assert dom.count("background:#c62828") == 2  # two detected features in red
    plots = re.findall(r'id="hist-\d+" class="plotly-graph-div[^"]*js-plotly-plot', dom)
    assert len(plots) == 6  # plotly drew every histogram
    assert dom.count('class="main-svg"') >= 12
    assert dom.count(">reference<") >= 6 and dom.count(">window<") >= 6
    screenshot(page, tmp_path / "window.png")
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
