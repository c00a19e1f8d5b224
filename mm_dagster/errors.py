"""Public import path of the error types; the code lives in `mm_dagster.core.errors`."""

from mm_dagster.core.errors import (
    AppOutputError,
    EventValidationError,
    MonitoringError,
    UnknownEndpointError,
)

__all__ = ["AppOutputError", "EventValidationError", "MonitoringError", "UnknownEndpointError"]
