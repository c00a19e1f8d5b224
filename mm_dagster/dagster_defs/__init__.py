"""Dagster wiring: window assets, app asset factory, controller sensor, checks and alert sensors."""

from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.definitions import build_definitions

__all__ = ["MonitoringConfig", "build_definitions"]
