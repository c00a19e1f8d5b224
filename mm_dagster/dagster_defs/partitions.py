"""Window partitions: one per base_period window, UTC."""

from dagster import AssetExecutionContext, TimeWindowPartitionsDefinition

from mm_dagster.core.windows import PARTITION_KEY_FORMAT, Window, cron_for, to_utc


def window_partitions(base_period: int, start: object) -> TimeWindowPartitionsDefinition:
    return TimeWindowPartitionsDefinition(
        cron_schedule=cron_for(base_period),
        start=to_utc(start),  # type: ignore[arg-type]
        timezone="UTC",
        fmt=PARTITION_KEY_FORMAT,
    )


def windows_of_run(context: AssetExecutionContext, base_period: int) -> list[Window]:
    """The windows a run covers: one for a single partition, several for a backfill range."""
    return [Window.from_key(key, base_period) for key in context.partition_keys]
