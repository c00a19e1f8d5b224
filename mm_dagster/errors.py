"""Public import path of the error types; the code lives in `mm_dagster.core.errors`."""

from mm_dagster.core.errors import (
    AlertConfigError,
    AppOutputError,
    DeliveryError,
    EventValidationError,
    MonitoringError,
    UnknownEndpointError,
)

__all__ = [
    "AlertConfigError",
    "AppOutputError",
    "DeliveryError",
    "EventValidationError",
    "MonitoringError",
    "UnknownEndpointError",
]
