"""Window partitions: one per base_period window, UTC."""

from datetime import datetime

from dagster import TimeWindowPartitionsDefinition

from mm_dagster.core.windows import PARTITION_KEY_FORMAT, cron_for, to_utc


def window_partitions(base_period: int, start: datetime | str) -> TimeWindowPartitionsDefinition:
    return TimeWindowPartitionsDefinition(
        cron_schedule=cron_for(base_period),
        start=to_utc(start),
        timezone="UTC",
        fmt=PARTITION_KEY_FORMAT,
    )
