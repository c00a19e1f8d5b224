"""Name rules for endpoints, apps, results and alerts (spec §1, §2, §6)."""

import re

from mm_dagster.core.errors import MonitoringError

ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
APP_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
VALUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ENDPOINT_ID = re.compile(r"[0-9a-f]{32}")


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
