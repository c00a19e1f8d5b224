"""Recording ground truth (labels) and joining it to the events of a window.

`record_labels` validates a batch, finds each request's prediction (labels already stored, then
the endpoint's event files newest day first, within `horizon`), and stores the batch in one
transaction with arrival rows for the windows of the predictions found: the controller re-runs
those windows, so their performance is recomputed. A label whose prediction is not found yet is
stored unmatched, counted and reported (`LabelReceipt`, `LabelStore.summary`, the performance
app's `unmatched_labels` metric); when the prediction is stored later, `match_events` (run after
every stored event batch) matches it, and its window runs because its events arrived.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from mm_dagster.core.endpoint import BOOL, FLOAT, STRING, ModelEndpoint
from mm_dagster.core.model_task import ModelTask
from mm_dagster.core.window_events import WindowEvents
from mm_dagster.events.label_validation import validate_labels
from mm_dagster.events.validation import EventRules
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_store import EventStore
from mm_dagster.storage.label_store import LabelStore

log = logging.getLogger(__name__)

DEFAULT_LABEL_HORIZON = timedelta(days=30)


@dataclass(frozen=True)
class LabelReceipt:
    """What one `record_labels` call stored: `matched` labels found their prediction, and
    `unmatched` ones wait for it (their request ids are in `unmatched_ids`, at most 20 shown)."""

    endpoint_id: str
    stored: int
    matched: int
    unmatched: int
    unmatched_ids: list[str]
    windows: list[datetime]  # starts of the store slots re-opened


class LabelIngestor:
    def __init__(
        self,
        store: LabelStore,
        events: EventStore,
        registry: EndpointRegistry,
        rules: EventRules | None = None,
        horizon: timedelta = DEFAULT_LABEL_HORIZON,
    ) -> None:
        self.store = store
        self.events = events
        self.registry = registry
        self.rules = rules or EventRules()
        self.horizon = horizon

    def record_labels(
        self,
        endpoint: str | ModelEndpoint,
        labels: pd.DataFrame,
        now: datetime | None = None,
        timestamp_unit: str | None = None,
    ) -> LabelReceipt:
        """Validate and store a batch of labels (all or none); a later label for a request
        replaces the earlier. A deleted or unknown endpoint is an error."""
        ep = self.registry.get(endpoint.id if isinstance(endpoint, ModelEndpoint) else endpoint)
        now_ts = pd.Timestamp(now or self.registry.clock())
        batch = validate_labels(ep, labels, now_ts, self.rules, timestamp_unit)
        request_ids = [str(r) for r in batch["request_id"]]
        times = self.store.event_times(ep.id, request_ids)
        missing = [r for r in request_ids if r not in times]
        if missing:
            until = now_ts.to_pydatetime() + self.rules.max_future_skew
            times |= self.events.request_times(ep.id, missing, until - self.horizon, until)
        self.store.record(ep.id, batch, times)
        unmatched = [r for r in request_ids if r not in times]
        if unmatched:
            log.warning(
                "endpoint %s: %d of %d labels have no stored prediction yet (kept, matched when it "
                "is stored): %s",
                ep.name,
                len(unmatched),
                len(request_ids),
                unmatched[:5],
            )
        slots = pd.Series(pd.to_datetime(list(times.values()), utc=True)).dt.floor(
            f"{self.events.base_period}min"
        )
        windows = [ts.to_pydatetime() for ts in sorted(set(slots))]
        return LabelReceipt(ep.id, len(batch), len(times), len(unmatched), unmatched[:20], windows)

    def match_events(self, endpoint_id: str, table: pa.Table) -> int:
        """Match the endpoint's unmatched labels to a batch of events just stored."""
        ids = table["request_id"].to_numpy(zero_copy_only=False).astype(str)
        pending = self.store.pending_among(endpoint_id, sorted(set(ids)))
        if not pending:
            return 0
        hits = np.isin(ids, sorted(pending))
        if not hits.any():
            return 0
        times = pd.Series(table["timestamp"].to_pandas()[hits].to_numpy(), index=ids[hits])
        first = times.groupby(level=0).min()
        return self.store.resolve(
            endpoint_id, {str(k): pd.Timestamp(v).to_pydatetime() for k, v in first.items()}, reopen=False
        )

    def match_stored(self, endpoint: str | ModelEndpoint, now: datetime | None = None) -> int:
        """Look again for the predictions of the endpoint's unmatched labels in its stored events
        (within the horizon), re-opening the windows of those found. Returns how many matched."""
        ep = self.registry.get(endpoint.id if isinstance(endpoint, ModelEndpoint) else endpoint)
        pending = self.store.pending(ep.id)
        if not pending:
            return 0
        until = (now or self.registry.clock()) + self.rules.max_future_skew
        found = self.events.request_times(ep.id, pending, until - self.horizon, until)
        return self.store.resolve(ep.id, found, reopen=True)


def target_column(kind: str, labels: pd.DataFrame | None, request_ids: pd.Series) -> pd.Series:
    """The target for each event (by request id) as column type `kind` (the prediction's), null
    where not labelled."""
    column = "value_text" if kind == STRING else "value_number"
    values = np.full(
        len(request_ids), None if kind == STRING else np.nan, dtype=object if kind == STRING else float
    )
    if labels is not None and not labels.empty:
        # Request ids are unique among an endpoint's labels (the table's key).
        position = pd.Index(labels["request_id"].to_numpy(dtype=object)).get_indexer(
            request_ids.to_numpy(dtype=object)
        )
        found = position >= 0
        values[found] = labels[column].to_numpy()[position[found]]
    if kind == FLOAT:
        return pd.Series(values, index=request_ids.index, dtype="float64")
    if kind == BOOL:
        return pd.Series(values, index=request_ids.index, dtype="float64").astype("boolean")
    return pd.Series(values, index=request_ids.index, dtype=pd.StringDtype("pyarrow"))


def join_labels(
    events: Mapping[str, pd.DataFrame],
    targets: Mapping[str, tuple[ModelTask, str]],
    labels: Mapping[str, pd.DataFrame],
) -> dict[str, pd.DataFrame]:
    """`events` with, for every endpoint in `targets` (its task and prediction column type), its
    target column added from `labels` (per endpoint; null where not labelled). Other frames are
    passed through; the event columns are not copied."""
    joined = dict(events)
    for endpoint_id, frame in events.items():
        if endpoint_id not in targets:
            continue
        task, kind = targets[endpoint_id]
        if task.target in frame.columns:
            continue
        with_target = frame.copy(deep=False)  # a new column, the event columns shared
        with_target[task.target] = target_column(kind, labels.get(endpoint_id), frame["request_id"])
        joined[endpoint_id] = with_target
    if isinstance(events, WindowEvents):  # the new frames have the old rows: blocks carry over
        return events.derived(joined, same_rows=[e for e in joined if joined[e] is not events[e]])
    return joined
