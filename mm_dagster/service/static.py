"""Static files of the pages: plotly's bundled JS, served by the service (no CDN)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mm_dagster.service.state import ServiceState, service_state

PLOTLY_PATH = "/static/plotly.min.js"
router = APIRouter(include_in_schema=False)


@router.get(PLOTLY_PATH)
def plotly_js(state: Annotated[ServiceState, Depends(service_state)]) -> Response:
    return Response(
        state.plotly_js(),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )
