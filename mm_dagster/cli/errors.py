"""The one kind of error the CLI reports as `mm: <message>` with exit code 2."""

from mm_dagster.core.errors import MonitoringError


class UsageError(MonitoringError):
    """The user asked for something that cannot be done as asked (a bad option value, a name
    that does not exist, a missing home)."""
