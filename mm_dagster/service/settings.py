"""What `mm serve` runs with, resolved once from explicit values, then the environment.

| setting | environment | default |
| --- | --- | --- |
| storage (home, database, roots) | `MM_HOME`, `MM_DATABASE_URL`, `MM_*_ROOT`, ... | `StorageSettings` |
| base_period | (the `MonitoringConfig`'s) | 10 minutes |
| apps, project, thresholds | (the `MonitoringConfig`'s apps and project) | apps with results |
| ui_url | `MM_UI_URL` | `http://127.0.0.1:8080` |
| dagster_url | `MM_DAGSTER_URL` | none (no run links) |
| max_body_bytes | `MM_MAX_BODY_BYTES` | 32 MiB |
| max_concurrent_writes | `MM_MAX_CONCURRENT_WRITES` | 8 |
| per_feature_metrics | `MM_METRICS_PER_FEATURE` | off: /metrics leaves `<family>__<feature>` metrics out |
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.links import UiLinks, check_base_url
from mm_dagster.monitoring import DEFAULT_BASE_PERIOD, StorageSettings

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_WRITES = 8


def _positive_int(value: str | int, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise MonitoringError(f"{what} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise MonitoringError(f"{what} must be a positive integer, got {value!r}")
    return number


def _flag(value: str, what: str) -> bool:
    if value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise MonitoringError(f"{what} must be 1/true/yes or 0/false/no, got {value!r}")


@dataclass(frozen=True)
class ServiceSettings:
    storage: StorageSettings
    links: UiLinks = field(default_factory=UiLinks)
    apps: tuple[str, ...] = ()
    project: str = "default"
    # (app, result name) -> (potential, detected), drawn on the endpoint page's timelines.
    thresholds: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    dagster_url: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent_writes: int = DEFAULT_MAX_CONCURRENT_WRITES
    # /metrics also exports metrics named `<family>__<feature>` (a series per feature).
    per_feature_metrics: bool = False

    @property
    def base_period(self) -> int:
        return self.storage.base_period

    @classmethod
    def from_config(cls, config: Any, environ: Mapping[str, str] | None = None) -> "ServiceSettings":
        """Settings for a deployment's `MonitoringConfig` (its base period, apps, project and the
        apps' result thresholds), the rest from the environment."""
        return cls.resolve(
            base_period=config.base_period,
            apps=[app.name for app in config.apps],
            project=config.project,
            thresholds={
                (app.name, name): bounds
                for app in config.apps
                for name, bounds in app.result_thresholds().items()
            },
            environ=environ,
        )

    @classmethod
    def resolve(
        cls,
        *,
        base_period: int = DEFAULT_BASE_PERIOD,
        apps: Sequence[str] = (),
        project: str = "default",
        thresholds: Mapping[tuple[str, str], tuple[float, float]] | None = None,
        storage: StorageSettings | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> "ServiceSettings":
        env = os.environ if environ is None else environ
        dagster_url = env.get("MM_DAGSTER_URL") or None
        return cls(
            storage=storage or StorageSettings.resolve(base_period=base_period, environ=env),
            links=UiLinks.from_env(env),
            apps=tuple(apps),
            project=project,
            thresholds=dict(thresholds or {}),
            dagster_url=check_base_url(dagster_url) if dagster_url else None,
            max_body_bytes=_positive_int(
                env.get("MM_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES), "MM_MAX_BODY_BYTES"
            ),
            per_feature_metrics=_flag(env.get("MM_METRICS_PER_FEATURE", ""), "MM_METRICS_PER_FEATURE"),
            max_concurrent_writes=_positive_int(
                env.get("MM_MAX_CONCURRENT_WRITES", DEFAULT_MAX_CONCURRENT_WRITES),
                "MM_MAX_CONCURRENT_WRITES",
            ),
        )
