"""The monitoring configuration a code location is built from, and the Dagster names it claims."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dagster import AssetKey, ExecutorDefinition

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.alerting import AlertConfig, Channel
from mm_dagster.core.clock import utcnow
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.shards import Shard, check_shard_count
from mm_dagster.core.windows import to_utc, validate_base_period
from mm_dagster.events.maintenance import DEFAULT_RETENTION

MIN_SENSOR_INTERVAL_SECONDS = 30
PREFIX = re.compile(r"[a-z][a-z0-9_]{0,39}")


def default_partitions_start(now: datetime, history: timedelta) -> datetime:
    """The start of the UTC day `history` before `now`."""
    return to_utc(now - history).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class DefinitionNames:
    """Every name a config claims in a code location. With a prefix, two configs (say, two teams
    with their own stores) sit side by side in one `Definitions` without clashing."""

    prefix: str = ""

    def _name(self, name: str) -> str:
        return f"mm_{self.prefix}_{name}" if self.prefix else f"mm_{name}"

    @property
    def resource_key(self) -> str:
        return f"mm_{self.prefix}" if self.prefix else "mm"

    @property
    def job(self) -> str:
        return self._name("monitoring_job")

    @property
    def controller_sensor(self) -> str:
        return self._name("controller")

    @property
    def delivery_sensor(self) -> str:
        return self._name("alert_delivery")

    @property
    def maintenance_job(self) -> str:
        return self._name("maintenance_job")

    @property
    def maintenance_schedule(self) -> str:
        return self._name("maintenance_schedule")

    @property
    def group(self) -> str:
        return f"model_monitoring_{self.prefix}" if self.prefix else "model_monitoring"

    def asset_key(self, *path: str) -> AssetKey:
        return AssetKey(["mm", self.prefix, *path] if self.prefix else ["mm", *path])

    def app_asset_key(self, app_name: str, kind: str) -> AssetKey:
        """`mm/<app>/<app>_<kind>`: the lineage labels a node with its key's last part, so that
        part names the app too."""
        return self.asset_key(app_name, f"{app_name}_{kind}")

    def shard_asset_key(self, shard: Shard) -> AssetKey:
        """`mm/analysis/shard_<i>_of_<K>` (1-based): the analysis of one shard of every window."""
        return self.asset_key("analysis", f"shard_{shard.index + 1}_of_{shard.count}")

    def app_node(self, app_name: str) -> str:
        return self._name(f"app_{app_name.replace('-', '_')}")


@dataclass
class MonitoringConfig:
    """Everything a deployment decides. Adding an app is one line in `apps`.

    - `base_period`: window length in minutes (divides 1440; see `core.windows.validate_base_period`).
    - `allowed_lateness`: how long after its end a window waits for stragglers before it closes.
    - `max_catchup_windows`: at most this many windows are requested per controller tick (newest
      first); the others wait for the next ticks.
    - `late_data_horizon`: events arriving for windows older than this (before the newest closed
      window) are not re-analysed automatically; a backfill covers them.
    - `partitions_start`: the first window Dagster knows (older windows cannot be backfilled).
      Default: the start of the UTC day `partitions_history` before the code location loads, so
      the UI's partitions cover what the controller and a recent backfill can reach, not a fixed
      date that grows a longer "missing" tail every day. Give a date to reach further back.
    - `partitions_history`: how far back the default `partitions_start` reaches (default 1 day;
      never less than `late_data_horizon`, the controller's own reach).
    - `alerts`: `AlertConfig`s evaluated on every stored result and app failure.
    - `check_notifications`: channels told once per failed check and window (ERROR severity,
      and WARN too with `check_notifications_on_warn`).
    - `resend_when_healthy`: re-queue an alert's failed notifications once their channel delivers
      again (otherwise `mm alerts resend`).
    - `retention`: events older than this are deleted by the maintenance job (default 30 days;
      results and metrics are kept); `maintenance_cron`: when that job runs (UTC, hourly).
    - `owners`: the Dagster owners of the monitoring assets (`team:<name>` or e-mail addresses).
    - `controller_interval_seconds`: how often the controller sensor ticks (default one
      `base_period`; at least 30 s). Shorter picks closed windows and late events up sooner.
    - `shards`: split every window's endpoints into this many shards (by a stable hash of the
      endpoint id), each analysed by its own step (`mm/analysis/shard_<i>_of_<K>`, running every
      app on its endpoints), so the run's executor spreads them over processes or hosts. Each
      app's results step then reads the whole window back: results, checks and alerts are the
      same for any number of shards. Default 1.
    - `executor`: the monitoring job's Dagster executor (default `in_process_executor`; with
      shards, `multiprocess_executor` on one host or `dagster_celery.celery_executor` on many).
    - `prefix`: set it to put two configs in one code location (asset keys `mm/<prefix>/...`,
      resource key `mm_<prefix>`, job and sensors `mm_<prefix>_...`).
    """

    apps: Sequence[ModelMonitoringApplicationBase]
    base_period: int = 10
    allowed_lateness: timedelta = timedelta(minutes=1)
    max_catchup_windows: int = 144
    late_data_horizon: timedelta = timedelta(days=1)
    partitions_start: datetime | str | None = None
    partitions_history: timedelta = timedelta(days=1)
    sensor_running_by_default: bool = True
    alerts: Sequence[AlertConfig] = field(default_factory=list)
    check_notifications: Sequence[Channel] = field(default_factory=list)
    check_notifications_on_warn: bool = False
    resend_when_healthy: bool = False
    project: str = "default"
    prefix: str = ""
    owners: Sequence[str] = ("team:model_monitoring",)
    retention: timedelta = DEFAULT_RETENTION
    maintenance_cron: str = "17 * * * *"
    max_run_seconds: int = 4 * 3600  # Dagster's `dagster/max_runtime` on monitoring runs
    controller_interval_seconds: int | None = None
    shards: int = 1
    executor: ExecutorDefinition | None = None

    def __post_init__(self) -> None:
        validate_base_period(self.base_period)
        check_shard_count(self.shards)
        if self.allowed_lateness < timedelta(0):
            raise MonitoringError(f"allowed_lateness must be >= 0, got {self.allowed_lateness}")
        if self.late_data_horizon < timedelta(minutes=self.base_period):
            raise MonitoringError(
                f"late_data_horizon ({self.late_data_horizon}) must cover at least one window "
                f"({self.base_period} minutes)"
            )
        if self.max_catchup_windows < 1:
            raise MonitoringError(f"max_catchup_windows must be >= 1, got {self.max_catchup_windows}")
        interval = self.controller_interval_seconds
        if interval is not None and interval < MIN_SENSOR_INTERVAL_SECONDS:
            raise MonitoringError(
                f"controller_interval_seconds must be >= {MIN_SENSOR_INTERVAL_SECONDS}, got {interval}"
            )
        if self.retention <= timedelta(0):
            raise MonitoringError(f"retention must be positive, got {self.retention}")
        if self.prefix and not PREFIX.fullmatch(self.prefix):
            raise MonitoringError(f"prefix {self.prefix!r} must match {PREFIX.pattern}")
        if self.partitions_history <= timedelta(0):
            raise MonitoringError(f"partitions_history must be positive, got {self.partitions_history}")
        self.partitions_start = (
            default_partitions_start(utcnow(), max(self.partitions_history, self.late_data_horizon))
            if self.partitions_start is None
            else to_utc(self.partitions_start)
        )
        names = [app.name for app in self.apps]
        if len(set(names)) != len(names):
            raise MonitoringError(f"two apps share a NAME: {names}")
        if not self.apps:
            raise MonitoringError("MonitoringConfig needs at least one app")

    @property
    def names(self) -> DefinitionNames:
        return DefinitionNames(self.prefix)

    @property
    def start(self) -> datetime:
        assert self.partitions_start is not None  # set in __post_init__
        return to_utc(self.partitions_start)

    @property
    def sensor_interval_seconds(self) -> int:
        if self.controller_interval_seconds is not None:
            return self.controller_interval_seconds
        return max(self.base_period * 60, MIN_SENSOR_INTERVAL_SECONDS)
