"""The code location `workspace.yaml` loads: the built-in drift app plus the example apps."""

from apps.dummy_app import ServingMonitoring
from apps.serving_health import ServingHealthApplication
from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions

config = MonitoringConfig(
    base_period=10,
    partitions_start="2026-11-01",
    apps=[
        HistogramDataDriftApplication(),
        ServingHealthApplication(potential_error_rate=0.02, detected_error_rate=0.1),
        ServingMonitoring(),
    ],
)

defs = build_definitions(config)
