"""The monitoring-app API, import-compatible with `mlrun.model_monitoring.applications`."""

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.data_quality import DataQualityApplication
from mm_dagster.applications.estimated_performance import EstimatedPerformanceApplication
from mm_dagster.applications.histogram_drift import HistogramDataDriftApplication
from mm_dagster.applications.multivariate_drift import MultivariateDriftApplication
from mm_dagster.applications.operational import OperationalApplication
from mm_dagster.applications.performance import PerformanceApplication
from mm_dagster.core.outputs import (
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
)


def __getattr__(name: str) -> object:
    # Evidently costs ~2.5 s to import: only code that uses it pays.
    if name in ("EvidentlyModelMonitoringApplicationBase", "SUPPORTED_EVIDENTLY_VERSION"):
        from mm_dagster.applications import evidently_base

        return getattr(evidently_base, name)
    raise AttributeError(name)


__all__ = [
    "DataQualityApplication",
    "EstimatedPerformanceApplication",
    "EvidentlyModelMonitoringApplicationBase",
    "HistogramDataDriftApplication",
    "ModelMonitoringApplicationBase",
    "ModelMonitoringApplicationMetric",
    "ModelMonitoringApplicationResult",
    "MonitoringApplicationContext",
    "MultivariateDriftApplication",
    "OperationalApplication",
    "PerformanceApplication",
]
