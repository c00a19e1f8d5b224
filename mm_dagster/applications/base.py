"""The monitoring-app base class (MLRun-compatible)."""

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from mm_dagster.core.names import APP_NAME, check_name, kebab_case
from mm_dagster.core.persistence import Persistence

DEFAULT_APP_TIMEOUT_SECONDS = 600.0

if TYPE_CHECKING:
    from mm_dagster.applications.context import MonitoringApplicationContext


class ModelMonitoringApplicationBase(ABC):
    """Subclass it and implement `do_tracking`; it runs once per (closed window, endpoint).

    `NAME` defaults to the class name in kebab-case. `__init__` may take arguments.
    `app_timeout_seconds` (default 600) bounds the time the app may spend on one window.
    """

    NAME: ClassVar[str | None] = None
    # Time budget per window (all endpoints together), in seconds; None: no limit. When it runs
    # out, the remaining endpoints are recorded as failed ("timed out") and the run goes on.
    app_timeout_seconds: float | None = DEFAULT_APP_TIMEOUT_SECONDS
    # Report a result's status only when it held in k of the last n windows (None: every window
    # stands alone); the window's own verdict stays in extra_data["raw_status"].
    persistence: Persistence | None = None

    @property
    def name(self) -> str:
        name = type(self).NAME or kebab_case(type(self).__name__)
        return check_name(APP_NAME, name, f"app name of {type(self).__name__}")

    @abstractmethod
    def do_tracking(self, monitoring_context: "MonitoringApplicationContext") -> Any:
        """Return a result, a list of results and metrics, a dict[str, float], or None."""
