"""The Dagster resource that owns a deployment's runtime state: its stores."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from mm_dagster.core.errors import MonitoringError
from mm_dagster.monitoring import DEFAULT_BASE_PERIOD, Monitoring, StorageSettings


class MonitoringResource(ConfigurableResource["MonitoringResource"]):
    """Storage locations of the deployment. Each field may be a literal or a Dagster `EnvVar`
    (resolved when a run or tick starts); an empty field falls back to the environment variable
    named in its description, then to the embedded default (`StorageSettings`).

    The stores are built once per run (per step process with a multiprocess executor) and per
    sensor tick, in `setup_for_execution`, and released in `teardown_after_execution`. A window's
    events are read by the analysis step that uses them, in parts (`Monitoring.analyse_window`).
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

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._monitoring is not None:
            self._monitoring.close()
        self._monitoring = None

    @property
    def monitoring(self) -> Monitoring:
        if self._monitoring is None:
            raise MonitoringError(
                "MonitoringResource is not set up: Dagster sets it up for runs and sensor ticks; "
                "outside Dagster use Monitoring(resource.settings())"
            )
        return self._monitoring
