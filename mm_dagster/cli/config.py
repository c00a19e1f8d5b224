"""Loading what `--config` and `--alerts-yaml` name, with one-line errors for user mistakes."""

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from mm_dagster.cli.errors import UsageError

if TYPE_CHECKING:
    from mm_dagster.alerts.service import AlertService
    from mm_dagster.dagster_defs import MonitoringConfig
    from mm_dagster.monitoring import Monitoring


def load_config(spec: str) -> "MonitoringConfig":
    """The `MonitoringConfig` at `module:attribute` (attribute `config` when omitted)."""
    from mm_dagster.dagster_defs import MonitoringConfig

    module_name, _, attr = spec.partition(":")
    attr = attr or "config"
    if not module_name:
        raise UsageError(f"--config {spec!r}: expected module:attribute, e.g. apps.definitions:config")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise UsageError(f"--config {spec!r}: no module named {exc.name!r}") from None
        raise UsageError(f"--config {spec!r}: importing {module_name} failed: {exc}") from None
    if not hasattr(module, attr):
        raise UsageError(f"--config {spec!r}: module {module_name} has no attribute {attr!r}")
    config = getattr(module, attr)
    if not isinstance(config, MonitoringConfig):
        raise UsageError(f"--config {spec!r} is a {type(config).__name__}, not a MonitoringConfig")
    return config


def alert_service(config_spec: str, alerts_yaml: str | None, mm: "Monitoring") -> "AlertService":
    """The alerts of `alerts_yaml` if given, else of the config, over the deployment's alert store."""
    from mm_dagster.alerts import load_alerts_yaml
    from mm_dagster.alerts.service import AlertService
    from mm_dagster.storage.alert_store import AlertStore

    store = AlertStore(mm.engine)
    if alerts_yaml:
        if not Path(alerts_yaml).is_file():
            raise UsageError(f"--alerts-yaml {alerts_yaml!r}: no such file")
        return AlertService(store, load_alerts_yaml(alerts_yaml))
    config = load_config(config_spec)
    return AlertService(
        store, config.alerts, check_channels=config.check_notifications, project=config.project
    )
