"""The monitoring configuration a code location is built from."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import to_utc, validate_base_period

MIN_SENSOR_INTERVAL_SECONDS = 30


@dataclass
class MonitoringConfig:
    """Everything a deployment decides. Adding an app is one line in `apps`.

    - `base_period`: window length in minutes (divides 1440; see `windows.validate_base_period`).
    - `allowed_lateness`: how long after its end a window waits for stragglers before it closes.
    - `max_catchup_windows`: after downtime, how many of the newest closed windows are requested.
    - `partitions_start`: the first window Dagster knows (older windows cannot be backfilled).
    - `alerts`: `AlertConfig`s evaluated on every stored result and app failure.
    - `check_notifications`: channels told once per failed check and window (ERROR severity,
      and WARN too with `check_notifications_on_warn`).
    """

    apps: Sequence[ModelMonitoringApplicationBase]
    base_period: int = 10
    allowed_lateness: timedelta = timedelta(minutes=1)
    max_catchup_windows: int = 144
    partitions_start: datetime | str = "2026-01-01"
    sensor_running_by_default: bool = True
    alerts: Sequence[Any] = field(default_factory=list)
    check_notifications: Sequence[Any] = field(default_factory=list)
    check_notifications_on_warn: bool = False

    project: str = "default"

    def __post_init__(self) -> None:
        validate_base_period(self.base_period)
        if self.allowed_lateness < timedelta(0):
            raise MonitoringError(f"allowed_lateness must be >= 0, got {self.allowed_lateness}")
        if self.max_catchup_windows < 1:
            raise MonitoringError(f"max_catchup_windows must be >= 1, got {self.max_catchup_windows}")
        self.partitions_start = to_utc(self.partitions_start)
        names = [app.name for app in self.apps]
        if len(set(names)) != len(names):
            raise MonitoringError(f"two apps share a NAME: {names}")
        if not self.apps:
            raise MonitoringError("MonitoringConfig needs at least one app")

    @property
    def sensor_interval_seconds(self) -> int:
        return max(self.base_period * 60, MIN_SENSOR_INTERVAL_SECONDS)
