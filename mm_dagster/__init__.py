"""mm_dagster: production model monitoring as a Dagster asset pipeline."""

from mm_dagster.core.errors import MonitoringError

__all__ = ["MonitoringError"]
__version__ = "0.1.0"
