"""The monitoring-app base class (MLRun-compatible)."""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.names import APP_NAME, check_name, kebab_case
from mm_dagster.core.persistence import Persistence
from mm_dagster.core.traffic import check_lookback

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
    # Silent endpoints: with N, the app also runs (with an empty `sample_df`) on every endpoint
    # that had events in each of the N windows before this one and has none in it; the
    # controller requests such windows even when no endpoint has events. None: never.
    silent_endpoint_windows: int | None = None
    # On an endpoint with segment columns, also run once per segment (`context.segment` says
    # which). False: endpoint-wide only (e.g. for an app too costly to run 50 times a window).
    run_per_segment: bool = True
    # The result names the app reports. Declared, each gets its own Dagster check on the app's
    # results asset (`<name>_within_thresholds`), and a result of another name is an output
    # error (recorded as the app's failure for that endpoint), never a result no check watches.
    # Empty (the default): one `within_thresholds` check over all the app's results.
    RESULT_NAMES: ClassVar[tuple[str, ...]] = ()
    # The event columns the app reads from `sample_df`: "all", or "model" (the model's inputs,
    # outputs, target and segment columns and the timestamp: not the recorder's request ids,
    # latencies and errors). When every app of a run reads "model", the run does not read those
    # columns from storage (request ids still, when an endpoint's labels need joining).
    event_columns: ClassVar[str] = "all"
    # Whether the app reads the endpoints' drift plans (`shared_reference_plan`): when one does, a
    # window read in parts decodes each part's plans on the read's thread, beside the apps.
    reads_reference_plans: ClassVar[bool] = False

    @property
    def name(self) -> str:
        name = type(self).NAME or kebab_case(type(self).__name__)
        return check_name(APP_NAME, name, f"app name of {type(self).__name__}")

    def result_thresholds(self) -> dict[str, tuple[float, float]]:
        """(potential, detected) per result name whose status is its value against two fixed
        bounds, drawn on the service's timelines; {} (the default) draws none."""
        return {}

    @abstractmethod
    def do_tracking(self, monitoring_context: "MonitoringApplicationContext") -> Any:
        """Return a result, a list of results and metrics, a dict[str, float], or None."""

    def track_window(self, contexts: Sequence["MonitoringApplicationContext"]) -> Sequence[Any]:
        """Optional batch hook: every endpoint (and segment) of one window in one call, for apps
        that can process them together faster (vectorised) than one `do_tracking` each.

        Returns one entry per context, in order: what `do_tracking` would return for it, or the
        exception that is that context's failure (recorded like a failed `do_tracking`). Entries
        are validated as `do_tracking`'s outputs are. The call shares the app's time budget
        (`app_timeout_seconds`): when it runs out, every context of the window is timed out. If
        the call itself raises (or returns a wrong number of entries), the runner logs it and
        falls back to `do_tracking` per context, so one bad endpoint never fails the others.

        Only an app that overrides it is run this way; this default (one `do_tracking` per
        context) says what an override must give.
        """
        outcomes: list[Any] = []
        for context in contexts:
            try:
                outcomes.append(self.do_tracking(context))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    @property
    def tracks_windows(self) -> bool:
        """Whether the app overrides `track_window` (the runner then calls it once per window)."""
        return type(self).track_window is not ModelMonitoringApplicationBase.track_window


RECORDER_COLUMNS = ("request_id", "latency_us", "error")  # what "model" leaves out


def event_columns_read(apps: Iterable[ModelMonitoringApplicationBase]) -> str:
    """ "model" when every app reads the model's columns only, else "all"."""
    declared = {app.event_columns for app in apps}
    unknown = declared - {"all", "model"}
    if unknown:
        raise MonitoringError(f"event_columns must be 'all' or 'model', got {sorted(unknown)}")
    return "model" if declared == {"model"} else "all"


def silence_lookback(apps: Iterable[ModelMonitoringApplicationBase]) -> int | None:
    """The longest `silent_endpoint_windows` of `apps` (None when no app wants silent endpoints)."""
    lookbacks = [
        check_lookback(app.silent_endpoint_windows, f"silent_endpoint_windows of app {app.name!r}")
        for app in apps
        if app.silent_endpoint_windows is not None
    ]
    return max(lookbacks) if lookbacks else None
