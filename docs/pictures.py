"""The README's pictures: each built-in app's results over the demo's windows, one PNG per app.

Run after `make demo` (it reads MM_HOME, default ./.mm_home): `make pictures`. Each picture is a
plotly page (values per endpoint and result over the windows, markers coloured by status) shot
with headless Chromium into docs/img/<app>.png.
"""

import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.monitoring import Monitoring

OUT = Path(__file__).parent / "img"
STATUS_COLOURS = {
    ResultStatusApp.irrelevant: "#9e9e9e",
    ResultStatusApp.no_detection: "#2e7d32",
    ResultStatusApp.potential_detection: "#f9a825",
    ResultStatusApp.detected: "#c62828",
}
APPS = (
    "histogram-data-drift",
    "data-quality",
    "multivariate-drift",
    "operational-health",
    "model-performance",
    "estimated-performance",
)


def app_figure(mm: Monitoring, app: str) -> go.Figure | None:
    names = {e.id: e.name for e in mm.list_endpoints()}
    series: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in mm.results.results(app=app):
        points = series[r.name]
        points[names.get(r.endpoint_id, r.endpoint_id)].append((r.window_start, r.value, r.status))
    if not series:
        return None
    fig = make_subplots(rows=len(series), cols=1, shared_xaxes=True, subplot_titles=sorted(series))
    for row, result in enumerate(sorted(series), start=1):
        for endpoint, points in sorted(series[result].items()):
            points.sort()
            fig.add_scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=endpoint,
                legendgroup=endpoint,
                showlegend=row == 1,
                marker={"color": [STATUS_COLOURS[p[2]] for p in points], "size": 9},
                line={"width": 1},
                row=row,
                col=1,
            )
    fig.update_layout(
        title=f"{app}: results per window (green no detection, amber potential, red detected)",
        height=220 * len(series) + 120,
        width=1100,
        margin={"l": 50, "r": 20, "t": 80, "b": 40},
    )
    return fig


def screenshot(html: Path, png: Path, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is needed for the pictures (apt-get install chromium)")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size=1120,{height}",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with Monitoring() as mm, tempfile.TemporaryDirectory() as scratch:
        for app in APPS:
            fig = app_figure(mm, app)
            if fig is None:
                print(f"{app}: no results in MM_HOME (run `make demo` first)")
                continue
            html = Path(scratch) / f"{app}.html"
            fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
            screenshot(html, OUT / f"{app}.png", int(fig.layout.height) + 20)
            print(f"{app}: {OUT / f'{app}.png'}")


if __name__ == "__main__":
    main()
