"""Recording events: validate, write files, then acknowledge the batch in one transaction.

The files are written first and become readable only when the transaction that registers them
(catalog rows, arrival rows and the endpoint's counters) commits: a batch is readable whole or
not at all, and the counters match what is readable. A writer that dies before the commit leaves
files no reader sees; maintenance sweeps them. An event is acknowledged when `record_events`
returns. `record_tables` stores many endpoints' batches at once (a recorder's drain): one slot
file per slot and schema holds them all, and one transaction acknowledges them all.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.latency import LatencyCounts
from mm_dagster.events.validation import EventRules, validate_events
from mm_dagster.storage.arrival_log import ArrivalLog, StoredBatch
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_store import EventStore, WrittenFile

log = logging.getLogger(__name__)

# Called with (endpoint_id, table) after a batch is stored, e.g. to match waiting labels.
AfterStore = Callable[[str, pa.Table], object]


@dataclass(frozen=True)
class EventReceipt:
    """What one batch of events did: `received` rows validated, `stored` rows written (0 for a
    batch stored before under the same batch id), the starts of the store slots it touched."""

    endpoint_id: str
    received: int
    stored: int
    slots: list[datetime]


def _slots(table: pa.Table, base_period: int) -> list[datetime]:
    if table.num_rows == 0:
        return []
    starts = pd.DatetimeIndex(table["timestamp"].to_pandas()).floor(f"{base_period}min").unique()
    return [ts.to_pydatetime() for ts in starts.sort_values()]


class EventIngestor:
    def __init__(
        self,
        store: EventStore,
        registry: EndpointRegistry,
        arrivals: ArrivalLog,
        rules: EventRules | None = None,
        after_store: Sequence[AfterStore] = (),
    ) -> None:
        self.store = store
        self.registry = registry
        self.arrivals = arrivals
        self.rules = rules or EventRules()
        self.after_store = list(after_store)

    def record_events(
        self,
        endpoint: str | ModelEndpoint,
        events: pd.DataFrame,
        now: datetime | None = None,
        timestamp_unit: str | None = None,
        batch_id: str | None = None,
    ) -> int:
        """Validate and store a batch of events (all or none). Returns how many were stored.
        Numeric timestamps need their `timestamp_unit` ('s', 'ms', 'us' or 'ns')."""
        return self.record_batch(endpoint, events, now, timestamp_unit, batch_id).stored

    def record_batch(
        self,
        endpoint: str | ModelEndpoint,
        events: pd.DataFrame,
        now: datetime | None = None,
        timestamp_unit: str | None = None,
        batch_id: str | None = None,
    ) -> EventReceipt:
        """`record_events`, saying also which store slots the batch touched. With a `batch_id`,
        a batch stored before under that id is not stored again (`stored` is 0)."""
        ep = endpoint if isinstance(endpoint, ModelEndpoint) else self.registry.get(endpoint)
        now_ts = pd.Timestamp(now or self.registry.clock())
        table = validate_events(ep, events, now_ts, self.rules, timestamp_unit)
        stored = self.record_table(ep.id, table, now_ts.to_pydatetime(), batch_id)
        return EventReceipt(ep.id, int(table.num_rows), stored, _slots(table, self.store.base_period))

    def record_table(
        self, endpoint_id: str, table: pa.Table, now: datetime | None = None, batch_id: str | None = None
    ) -> int:
        """Store an already validated batch (all or none). With a `batch_id`, a batch stored
        before under that id is not stored again (returns 0)."""
        files = self.store.write(endpoint_id, table)
        if not files:
            return 0
        try:
            stored = self.arrivals.record(
                endpoint_id, files, now or self.registry.clock(), batch_id, _latency_counts(table)
            )
        except BaseException:
            self.store.discard(files)
            raise
        if not stored:
            self.store.discard(files)
            return 0
        self._after_store(endpoint_id, table)
        return int(table.num_rows)

    def record_tables(
        self,
        tables: Mapping[str, pa.Table],
        now: datetime | None = None,
        batch_ids: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Store several endpoints' validated batches at once: one slot file per slot and schema
        holds them all, acknowledged in one transaction. Per endpoint as `record_table`: all or
        none, a batch stored before under its id in `batch_ids` is not stored again (0 for it),
        latencies counted, `after_store` hooks run. Returns the rows stored per endpoint. If the
        write or the commit fails, nothing is stored and the error is raised (each batch may then
        be stored or kept apart)."""
        ids = dict(batch_ids or {})
        written_at = now or self.registry.clock()
        fresh = self._not_stored_before({e: t for e, t in tables.items() if t.num_rows}, ids)
        while fresh and not self._store_together(fresh, ids, written_at):
            fresh = self._not_stored_before(fresh, ids)  # a concurrent replay stored some of them
        for endpoint_id, table in fresh.items():
            self._after_store(endpoint_id, table)
        return {e: int(fresh[e].num_rows) if e in fresh else 0 for e in tables}

    def _not_stored_before(
        self, tables: dict[str, pa.Table], batch_ids: Mapping[str, str]
    ) -> dict[str, pa.Table]:
        """`tables` without the batches whose id is acknowledged already."""
        known = self.arrivals.known_batches([batch_ids[e] for e in tables if e in batch_ids])
        return {e: t for e, t in tables.items() if e not in batch_ids or batch_ids[e] not in known}

    def _store_together(
        self, tables: dict[str, pa.Table], batch_ids: Mapping[str, str], now: datetime
    ) -> bool:
        """Write `tables` into slot files and acknowledge them; False (nothing stored) if one of
        their batch ids was acknowledged meanwhile."""
        files = self.store.write_slot_files(tables)
        rows: dict[str, list[WrittenFile]] = defaultdict(list)
        for f in files:
            rows[f.endpoint_id].append(f)
        batches = [StoredBatch(e, rows[e], batch_ids.get(e), _latency_counts(t)) for e, t in tables.items()]
        try:
            acknowledged = self.arrivals.record_batches(batches, now)
        except BaseException:
            self.store.discard(files)
            raise
        if not acknowledged:
            self.store.discard(files)
        return acknowledged

    def _after_store(self, endpoint_id: str, table: pa.Table) -> None:
        for hook in self.after_store:  # the batch is acknowledged: a failing hook only logs
            try:
                hook(endpoint_id, table)
            except Exception:
                log.warning(
                    "after storing events of endpoint %s: %r failed", endpoint_id, hook, exc_info=True
                )


def _latency_counts(table: pa.Table) -> LatencyCounts | None:
    if "latency_us" not in table.column_names:
        return None
    column = table["latency_us"]
    if column.null_count == len(column):
        return None
    return LatencyCounts.of(column.to_numpy(zero_copy_only=False).astype("float64", copy=False))
