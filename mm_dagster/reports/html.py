"""Small HTML building blocks shared by the report pages."""

from collections.abc import Mapping
from html import escape
from types import MappingProxyType
from typing import Any

from mm_dagster.core.schemas import ResultStatusApp

PLOTLY_JS = "plotly.min.js"
STATUS_COLOURS: Mapping[ResultStatusApp, str] = MappingProxyType(
    {
        ResultStatusApp.irrelevant: "#9e9e9e",
        ResultStatusApp.no_detection: "#2e7d32",
        ResultStatusApp.potential_detection: "#f9a825",
        ResultStatusApp.detected: "#c62828",
    }
)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; font-size: 13px; }
th { background: #f5f5f5; } td.name { text-align: left; font-weight: 600; }
td.status { color: white; font-weight: 600; text-align: center; }
nav { margin-bottom: 8px; font-size: 14px; } nav a { margin-right: 12px; }
.chip { display: inline-block; padding: 2px 8px; border-radius: 10px; color: white; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 8px; }
"""


def plotly_js() -> str:
    """Plotly's bundled JS, written next to report pages (no CDN: reports must open offline)."""
    import plotly.offline

    script: str = plotly.offline.get_plotlyjs()
    return script


def status_cell(status: ResultStatusApp) -> str:
    return f'<td class="status" style="background:{STATUS_COLOURS[status]}">{escape(status.name)}</td>'


def page(title: str, body: str, *, plotly_src: str = PLOTLY_JS, nav: str = "") -> str:
    """A whole page: `plotly_src` is where plotly's JS is served from (next to a written file,
    or the service's `/static/plotly.min.js`); `nav` an HTML bar of links above the title."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<script src='{escape(plotly_src)}'></script><style>{STYLE}</style></head>"
        f"<body>{nav}<h1>{escape(title)}</h1>{body}</body></html>"
    )


def figure_div(fig: Any, div_id: str) -> str:
    """A plotly figure as a `<div>` (plotly's own JS is loaded once by `page`)."""
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)
    return html
