"""Public import path of the window values (`mm_dagster.windows.Window`); the code lives in
`mm_dagster.core.windows`."""

from mm_dagster.core.windows import (
    PARTITION_KEY_FORMAT,
    Window,
    closed_before,
    cron_for,
    to_utc,
    validate_base_period,
    windows_between,
)

__all__ = [
    "PARTITION_KEY_FORMAT",
    "Window",
    "closed_before",
    "cron_for",
    "to_utc",
    "validate_base_period",
    "windows_between",
]
