"""The Dagster resource that gives steps and sensors the deployment's stores."""

import os

from dagster import ConfigurableResource, EnvVar

from mm_dagster.monitoring import Monitoring, StorageSettings


class MonitoringResource(ConfigurableResource):
    """Storage locations; unset fields fall back to MM_HOME and the embedded defaults."""

    home: str | None = None
    database_url: str | None = None
    events_root: str | None = None
    artifacts_root: str | None = None
    partition_minutes: int = 10

    def settings(self) -> StorageSettings:
        return StorageSettings.resolve(
            self.home,
            self.database_url,
            self.events_root,
            self.artifacts_root,
            self.partition_minutes,
        )

    def monitoring(self) -> Monitoring:
        return monitoring_for(self.settings())


_MONITORING: dict[StorageSettings, Monitoring] = {}


def monitoring_for(settings: StorageSettings) -> Monitoring:
    mm = _MONITORING.get(settings)
    if mm is None:
        mm = _MONITORING[settings] = Monitoring(settings)
    return mm


def _env(name: str) -> EnvVar | None:
    return EnvVar(name) if os.environ.get(name) else None


def resource_from_env(partition_minutes: int) -> MonitoringResource:
    """Resource wired to MM_HOME / MM_DATABASE_URL / MM_EVENTS_ROOT / MM_ARTIFACTS_ROOT."""
    return MonitoringResource(
        home=_env("MM_HOME"),
        database_url=_env("MM_DATABASE_URL"),
        events_root=_env("MM_EVENTS_ROOT"),
        artifacts_root=_env("MM_ARTIFACTS_ROOT"),
        partition_minutes=partition_minutes,
    )
