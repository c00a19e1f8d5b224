"""The service's runtime state: one `Monitoring` (its stores and engine) per running app."""

from dataclasses import dataclass, field

from fastapi import Request

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.monitoring import Monitoring
from mm_dagster.service.settings import ServiceSettings


@dataclass
class ServiceState:
    settings: ServiceSettings
    monitoring: Monitoring
    _plotly_js: bytes | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: ServiceSettings, clock: Clock = utcnow) -> "ServiceState":
        return cls(settings, Monitoring(settings.storage, clock=clock))

    def plotly_js(self) -> bytes:
        """Plotly's bundled JS (read once: it is 4.5 MB)."""
        if self._plotly_js is None:
            import plotly.offline

            script: str = plotly.offline.get_plotlyjs()
            self._plotly_js = script.encode()
        return self._plotly_js

    def close(self) -> None:
        self.monitoring.close()


def service_state(request: Request) -> ServiceState:
    """The running app's state (a FastAPI dependency)."""
    state: ServiceState = request.app.state.mm
    return state
