"""A small deployment for the service's tests: endpoints with events and results over a few
closed windows, one of them drifting from the third window on."""

from datetime import UTC, datetime, timedelta

from mm_dagster.applications import HistogramDataDriftApplication, OperationalApplication
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from tests.conftest import NOW

WINDOWS = 6
DRIFT_FROM = 3


def recent_boundary() -> datetime:
    """The last 10-minute boundary of the wall clock (for a service that runs on the real now)."""
    return Window.containing(datetime.now(UTC), 10).start


def populate(mm: Monitoring, endpoints: int = 2, now: datetime = NOW) -> list[Window]:
    """`endpoints` endpoints (`model-0` drifts from window DRIFT_FROM on, the others stay calm),
    300 events per window in the WINDOWS windows before `now` (the clock of `mm`), the drift and
    operational apps run on every window."""
    windows = [Window.containing(now - timedelta(minutes=10 * (WINDOWS - i)), 10) for i in range(WINDOWS)]
    for e in range(endpoints):
        mm.create_endpoint(
            f"model-{e}",
            reference=reference_frame(3000, seed=e),
            label_names=["prediction"],
            model_name=f"model-{e}",
            model_version="1",
        )
    apps = [HistogramDataDriftApplication(), OperationalApplication()]
    for i, window in enumerate(windows):
        for e in range(endpoints):
            drifted = e == 0 and i >= DRIFT_FROM
            shape = (
                TrafficShape(mean_shift=2.0, drifted_features=2, error_rate=0.05)
                if drifted
                else TrafficShape()
            )
            mm.record_events(
                f"model-{e}", traffic_frame(300, window.start, window.end, shape, seed=100 * e + i)
            )
        mm.run_window(apps, window)
    return windows
