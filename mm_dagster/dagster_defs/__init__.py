"""Dagster wiring: window assets, app asset factory, controller sensor, checks and alert sensors,
and gating helpers that let monitoring results act on the user's own assets and jobs."""

from mm_dagster.dagster_defs.config import MonitoringConfig
from mm_dagster.dagster_defs.definitions import build_definitions
from mm_dagster.dagster_defs.gating import build_persistence_sensor, build_result_gate

__all__ = ["MonitoringConfig", "build_definitions", "build_persistence_sensor", "build_result_gate"]
