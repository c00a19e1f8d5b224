"""Error types. Every message names what was wrong and where (endpoint, app, window, field)."""


class MonitoringError(ValueError):
    """Bad input or configuration for mm_dagster."""


class UnknownEndpointError(MonitoringError, KeyError):
    """An operation referred to an endpoint that does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class EventValidationError(MonitoringError):
    """Recorded events do not match their endpoint's schema. `field` and `problem` (the kind of
    problem, without the offending value) let callers count problems by reason."""

    def __init__(self, message: str, *, field: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem


class AppOutputError(MonitoringError):
    """A monitoring app returned something that cannot be stored."""


class AlertConfigError(MonitoringError):
    """An alert configuration is invalid."""


class DeliveryError(MonitoringError):
    """A notification could not be delivered (retried later)."""
