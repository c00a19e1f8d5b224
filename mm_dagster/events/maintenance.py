"""Event store maintenance: compaction of closed windows, retention, and cleaning up.

Run by the `mm_maintenance_job` (on a schedule) and by `mm maintain`. Every step is safe while
writers and readers work: compaction swaps files in one catalog transaction, replaced and expired
files stay on disk for `grace` so readers holding an older file list finish, and only files no
catalog row knows, older than `orphan_grace`, are swept.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.shards import EVERY_ENDPOINT, Shard
from mm_dagster.core.windows import Window, closed_before
from mm_dagster.storage.arrival_log import ArrivalLog
from mm_dagster.storage.event_store import CompactionResult, EventStore

DEFAULT_RETENTION = timedelta(days=30)
DEFAULT_GRACE = timedelta(minutes=30)
DEFAULT_ORPHAN_GRACE = timedelta(hours=1)
# A shard about to analyse a window first compacts its part of the window's slots once that part
# holds this many files: the analysis then reads one file per slot. Fewer (a re-analysis after a
# few late batches) are read as they are rather than rewriting the slot.
COMPACT_BEFORE_ANALYSIS = 16


@dataclass(frozen=True)
class MaintenancePolicy:
    """`retention`: events older than this are deleted (results and metrics are kept).
    `allowed_lateness`: slots are compacted once closed. `grace`: how long replaced files stay
    for readers. `orphan_grace`: how old an unregistered file must be before it is swept (longer
    than any batch takes to write)."""

    retention: timedelta = DEFAULT_RETENTION
    allowed_lateness: timedelta = timedelta(minutes=1)
    grace: timedelta = DEFAULT_GRACE
    orphan_grace: timedelta = DEFAULT_ORPHAN_GRACE

    def __post_init__(self) -> None:
        for name in ("retention", "grace", "orphan_grace"):
            if getattr(self, name) <= timedelta(0):
                raise MonitoringError(f"maintenance {name} must be positive, got {getattr(self, name)}")
        if self.allowed_lateness < timedelta(0):
            raise MonitoringError(f"allowed_lateness must be >= 0, got {self.allowed_lateness}")


@dataclass
class MaintenanceReport:
    compacted: list[CompactionResult] = field(default_factory=list)
    expired_files: int = 0
    expired_arrivals: int = 0
    purged_files: int = 0
    swept_files: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        merged = sum(c.files_merged for c in self.compacted)
        written = sum(c.files_written for c in self.compacted)
        return [
            f"compacted {len(self.compacted)} slot(s): {merged} files into {written}",
            f"expired {self.expired_files} file(s) and {self.expired_arrivals} arrival row(s) past retention",
            f"deleted {self.purged_files} replaced or expired file(s) past the grace period",
            f"swept {len(self.swept_files)} leftover file(s) of unacknowledged batches",
        ]


def maintain(
    store: EventStore, arrivals: ArrivalLog, policy: MaintenancePolicy, now: datetime
) -> MaintenanceReport:
    report = MaintenanceReport()
    closed = closed_before(now, policy.allowed_lateness, store.base_period)
    for slot_start in store.catalog.fragmented(slot_before=closed):
        result = store.compact_slot(slot_start)
        if result is not None:
            report.compacted.append(result)
    horizon = now - policy.retention
    report.expired_files = store.catalog.expire(slot_before=horizon)
    report.expired_arrivals = arrivals.expire(slot_before=horizon)
    report.purged_files = store.purge_retired(policy.grace)
    report.swept_files = store.sweep_orphans(policy.orphan_grace)
    return report


def compact_window(
    store: EventStore, window: Window, part: Shard = EVERY_ENDPOINT, min_files: int | None = None
) -> list[CompactionResult]:
    """Compact `part` of each slot of `window` whose files for it number at least `min_files`
    (default `COMPACT_BEFORE_ANALYSIS`). Safe while writers add late events: theirs stay files
    of their own; and while other shards compact their parts."""
    threshold = COMPACT_BEFORE_ANALYSIS if min_files is None else min_files
    results = []
    slot = store.slot_of(window.start)
    while slot < window.end:
        result = store.compact_slot(slot, part, min_files=threshold)
        if result is not None:
            results.append(result)
        slot += store.slot_length
    return results
