"""Name rules for endpoints, apps, results and alerts (spec §1, §2, §6)."""

import re

from mm_dagster.core.errors import MonitoringError

ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
APP_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
VALUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENDPOINT_ID = re.compile(r"[0-9a-f]{32}")
# Feature and label names: 1-128 printable characters without path separators.
COLUMN_NAME = re.compile(r"[^\x00-\x1f\x7f/\\]{1,128}")
EVENT_FIELDS = ("timestamp", "request_id", "latency_us", "error")
RESERVED_COLUMNS = (*EVENT_FIELDS, "endpoint_id")


def check_name(pattern: re.Pattern[str], value: object, what: str) -> str:
    """Return `value` if it fully matches `pattern`, else raise naming `what`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MonitoringError(f"invalid {what} {value!r}: must match {pattern.pattern}")
    return value


def check_endpoint_name(name: object) -> str:
    if isinstance(name, str) and ".." in name:
        raise MonitoringError(f"invalid endpoint name {name!r}: '..' is not allowed")
    return check_name(ENDPOINT_NAME, name, "endpoint name")


def kebab_case(class_name: str) -> str:
    """`ServingMonitoring` -> `serving-monitoring`, `HTTPApp` -> `http-app`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", class_name)
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", words)
    return re.sub(r"[^a-z0-9-]+", "-", words.lower()).strip("-")


def check_column_name(name: object, endpoint: str, what: str) -> str:
    """A feature or label name: not an event field, printable, no path separators or `..`, no
    surrounding spaces, not starting with `__` (Arrow's own fields), at most 128 chars."""
    where = f"endpoint {endpoint!r}: {what} {name!r}"
    if not isinstance(name, str):
        raise MonitoringError(f"{where} must be a string")
    if name in RESERVED_COLUMNS:
        raise MonitoringError(f"{where} is reserved for the event's own fields {list(RESERVED_COLUMNS)}")
    if not COLUMN_NAME.fullmatch(name) or name != name.strip() or name.startswith("__") or ".." in name:
        raise MonitoringError(
            f"{where} is not a valid column name: 1-128 printable characters, no '/', '\\', '..' "
            "or control characters, no leading '_' or surrounding spaces"
        )
    return name
