"""When the monitoring assets count as stale: Dagster's freshness policy (evaluated by its
FreshnessDaemon, which `dagster dev` runs; no sensor of ours)."""

from datetime import timedelta

from dagster import FreshnessPolicy

WARN_AFTER_WINDOWS = 3
FAIL_AFTER_WINDOWS = 12


def analysis_freshness(base_period: int) -> FreshnessPolicy:
    """WARN when no window has been analysed for 3 base periods, FAIL after 12."""
    return FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=FAIL_AFTER_WINDOWS * base_period),
        warn_window=timedelta(minutes=WARN_AFTER_WINDOWS * base_period),
    )
