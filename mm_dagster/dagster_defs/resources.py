"""The Dagster resource that owns a deployment's runtime state: its stores and the per-run
cache of window events."""

from collections import OrderedDict

import pandas as pd
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.shards import EVERY_ENDPOINT, Shard
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import DEFAULT_BASE_PERIOD, Monitoring, StorageSettings

CACHED_WINDOWS = 2


class MonitoringResource(ConfigurableResource["MonitoringResource"]):
    """Storage locations of the deployment. Each field may be a literal or a Dagster `EnvVar`
    (resolved when a run or tick starts); an empty field falls back to the environment variable
    named in its description, then to the embedded default (`StorageSettings`).

    The stores are built once per run (per step process with a multiprocess executor) and per
    sensor tick, in `setup_for_execution`, and released in `teardown_after_execution`. A window's
    events (of one shard) are read once per process and run.
    """

    home: str = Field(default="", description="MM_HOME; default ./.mm_home")
    database_url: str = Field(default="", description="MM_DATABASE_URL; default sqlite:///<home>/mm.db")
    events_root: str = Field(default="", description="MM_EVENTS_ROOT; default <home>/events")
    artifacts_root: str = Field(default="", description="MM_ARTIFACTS_ROOT; default <home>/artifacts")
    references_root: str = Field(default="", description="MM_REFERENCES_ROOT; default <home>/references")
    base_period: int = Field(
        default=DEFAULT_BASE_PERIOD, description="window length in minutes (the MonitoringConfig's)"
    )

    _monitoring: Monitoring | None = PrivateAttr(default=None)
    _windows: "OrderedDict[tuple[Window, Shard, str], dict[str, pd.DataFrame]]" = PrivateAttr(
        default_factory=OrderedDict
    )

    def settings(self) -> StorageSettings:
        return StorageSettings.resolve(
            self.home or None,
            self.database_url or None,
            self.events_root or None,
            self.artifacts_root or None,
            self.base_period,
            references_root=self.references_root or None,
        )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._monitoring = Monitoring(self.settings())
        self._windows = OrderedDict()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._monitoring is not None:
            self._monitoring.close()
        self._monitoring = None
        self._windows = OrderedDict()

    @property
    def monitoring(self) -> Monitoring:
        if self._monitoring is None:
            raise MonitoringError(
                "MonitoringResource is not set up: Dagster sets it up for runs and sensor ticks; "
                "outside Dagster use Monitoring(resource.settings())"
            )
        return self._monitoring

    def window_events(
        self, window: Window, shard: Shard = EVERY_ENDPOINT, columns: str = "all"
    ) -> dict[str, pd.DataFrame]:
        """The window's events per endpoint (of `shard`; `columns`: see `Monitoring.read_window`),
        read once while the resource is set up."""
        key = (window, shard, columns)
        events = self._windows.get(key)
        if events is None:
            events = self._windows[key] = self.monitoring.read_window(window, shard, columns)
            while len(self._windows) > CACHED_WINDOWS:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        return events
