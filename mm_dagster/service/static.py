"""Static files of the pages: plotly's bundled JS, served by the service (no CDN)."""

from functools import cache

from fastapi import APIRouter
from fastapi.responses import Response

PLOTLY_PATH = "/static/plotly.min.js"
router = APIRouter(include_in_schema=False)


@cache
def _plotly_js() -> bytes:
    import plotly.offline

    script: str = plotly.offline.get_plotlyjs()
    return script.encode()


@router.get(PLOTLY_PATH)
def plotly_js() -> Response:
    return Response(
        _plotly_js(),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )
