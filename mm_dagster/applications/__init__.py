"""The monitoring-app API, import-compatible with `mlrun.model_monitoring.applications`.

The built-in apps are imported on first use: they pull in SciPy, scikit-learn or Evidently
(seconds of import), which a serving process that only records events must not pay for.
"""

from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.outputs import (
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
)

if TYPE_CHECKING:
    from mm_dagster.applications.data_quality import DataQualityApplication
    from mm_dagster.applications.estimated_performance import EstimatedPerformanceApplication
    from mm_dagster.applications.evidently_base import (
        SUPPORTED_EVIDENTLY_VERSION,
        EvidentlyModelMonitoringApplicationBase,
    )
    from mm_dagster.applications.histogram_drift import HistogramDataDriftApplication
    from mm_dagster.applications.multivariate_drift import MultivariateDriftApplication
    from mm_dagster.applications.operational import OperationalApplication
    from mm_dagster.applications.performance import PerformanceApplication

MODULE_OF = MappingProxyType(
    {
        "DataQualityApplication": "data_quality",
        "EstimatedPerformanceApplication": "estimated_performance",
        "EvidentlyModelMonitoringApplicationBase": "evidently_base",
        "SUPPORTED_EVIDENTLY_VERSION": "evidently_base",
        "HistogramDataDriftApplication": "histogram_drift",
        "MultivariateDriftApplication": "multivariate_drift",
        "OperationalApplication": "operational",
        "PerformanceApplication": "performance",
    }
)


def __getattr__(name: str) -> object:
    if name in MODULE_OF:
        return getattr(import_module(f"mm_dagster.applications.{MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'mm_dagster.applications' has no attribute {name!r}")


__all__ = [
    "SUPPORTED_EVIDENTLY_VERSION",
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
