"""Turn a user's batch of labels (ground truth) into rows to store, or say exactly what is wrong.

Label columns: `request_id` (the prediction's), the task's target column and an optional
`timestamp` (when the label was known). The target's type is the prediction's: numbers for a
regression task (class labels are refused), the prediction column's type for a classification
task, and for a multiclass task one of the task's classes. Unlike features, a label is never
missing: a NaN label is refused (leave the request out until its label is known). Errors name the
endpoint, the field and the row, as for events (`events.validation`).
"""

import numpy as np
import pandas as pd

from mm_dagster.core.endpoint import BOOL, FLOAT, STRING, ModelEndpoint
from mm_dagster.core.errors import EventValidationError, MonitoringError
from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.events.validation import (
    EventRules,
    _as_text,
    _fail,
    _numeric,
    _reject_first,
    _row,
    _timestamps,
    _typed_objects,
    reject_repeated_columns,
)
from mm_dagster.stats.class_keys import class_keys

LABEL_TIME = "timestamp"
# What `validate_labels` returns: one row per label, ready for the label store.
LABEL_COLUMNS = ("request_id", "value_number", "value_text", "label_time")


def task_of(endpoint: ModelEndpoint) -> ModelTask:
    if endpoint.task is None:
        raise MonitoringError(
            f"endpoint {endpoint.name!r} ({endpoint.id}) declares no task, so it has no target for "
            "labels: create_endpoint(..., task=ModelTask(kind, prediction, target, scores))"
        )
    return endpoint.task


def _check_columns(endpoint: ModelEndpoint, task: ModelTask, columns: list[str]) -> None:
    for needed in ("request_id", task.target):
        if needed not in columns:
            raise _fail(endpoint, needed, None, f"missing from the labels (columns: {columns})")
    extra = [c for c in columns if c not in ("request_id", task.target, LABEL_TIME)]
    if extra:
        raise _fail(
            endpoint,
            extra[0],
            None,
            f"is not a label column (extra: {extra}; labels have request_id, {task.target!r} and an "
            f"optional {LABEL_TIME!r})",
        )
    reject_repeated_columns(endpoint, columns, "labels")


def _request_ids(endpoint: ModelEndpoint, s: pd.Series, labels: pd.Index, rules: EventRules) -> np.ndarray:
    texts = _as_text(endpoint, "request_id", s, labels)
    blank = s.isna().to_numpy() | (texts == "")
    _reject_first(endpoint, "request_id", blank, labels, lambda _: "empty request_id")
    too_long = np.fromiter((len(t) > rules.max_request_id_chars for t in texts), bool, len(texts))
    _reject_first(
        endpoint,
        "request_id",
        too_long,
        labels,
        lambda pos: f"request_id longer than {rules.max_request_id_chars} characters ({len(texts[pos])})",
    )
    repeated = pd.Series(texts).duplicated(keep=False).to_numpy()
    if repeated.any():
        first = int(np.flatnonzero(repeated)[0])
        rows = [_row(labels, int(p)) for p in np.flatnonzero(texts == texts[first])[:5]]
        raise _fail(
            endpoint,
            "request_id",
            rows[0],
            f"request_id {texts[first]!r} appears more than once in the batch (rows {rows}): one label "
            "per request; a later batch replaces a label",
        )
    return texts


def _values(
    endpoint: ModelEndpoint, task: ModelTask, s: pd.Series, labels: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """The target as (numbers, texts): one of them holds the values, the other is all None."""
    col = task.target
    _reject_first(
        endpoint,
        col,
        s.isna().to_numpy(),
        labels,
        lambda _: "missing label (NaN/None): leave the request out until its label is known",
    )
    kind = endpoint.column_types.get(task.prediction, FLOAT)
    nothing = np.full(len(s), None, dtype=object)
    if task.kind is TaskKind.regression or kind == FLOAT:
        try:
            numbers = _numeric(endpoint, col, s, labels).to_numpy(zero_copy_only=False)
        except EventValidationError as exc:
            if task.kind is not TaskKind.regression:
                raise
            raise EventValidationError(
                f"{exc} (a regression endpoint's labels are numbers, not class labels)",
                field=col,
                problem="class label on a regression endpoint",
            ) from exc
        _reject_first(
            endpoint,
            col,
            ~np.isfinite(numbers),
            labels,
            lambda pos: f"expected a finite number, got {numbers[pos]}",
        )
        values, typed = numbers.astype(object), pd.Series(numbers)
        result = (values, nothing)
    elif kind == BOOL:
        flags = _typed_objects(endpoint, col, s, BOOL, labels).to_numpy(zero_copy_only=False)
        typed = pd.Series(flags.astype(bool))
        result = (flags.astype(float).astype(object), nothing)
    else:
        assert kind == STRING
        texts = _typed_objects(endpoint, col, s, STRING, labels).to_numpy(zero_copy_only=False)
        typed = pd.Series(texts, dtype=object)
        result = (nothing, texts.astype(object))
    if task.kind is TaskKind.multiclass:
        keys = class_keys(typed)
        unknown = ~np.isin(keys, task.classes)
        _reject_first(
            endpoint,
            col,
            unknown,
            labels,
            lambda pos: f"class {keys[pos]!r} is not one of the task's classes {task.classes}",
        )
    return result


def validate_labels(
    endpoint: ModelEndpoint,
    df: pd.DataFrame,
    now: pd.Timestamp,
    rules: EventRules | None = None,
    timestamp_unit: str | None = None,
) -> pd.DataFrame:
    """Validate a batch of labels; return `LABEL_COLUMNS` rows, or raise naming field and row."""
    rules = rules or EventRules()
    task = task_of(endpoint)
    if not isinstance(df, pd.DataFrame):
        raise EventValidationError(
            f"endpoint {endpoint.name!r}: labels must be a pandas DataFrame, got {type(df).__name__}"
        )
    columns = [str(c) for c in df.columns]
    _check_columns(endpoint, task, columns)
    labels = df.index
    df = df.copy(deep=False)
    df.columns = columns
    df.index = pd.RangeIndex(len(df))
    request_ids = _request_ids(endpoint, df["request_id"], labels, rules)
    numbers, texts = _values(endpoint, task, df[task.target], labels)
    if LABEL_TIME in columns:
        label_time = _timestamps(endpoint, df[LABEL_TIME], labels, timestamp_unit, now, rules)
    else:
        label_time = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us, UTC]")
    return pd.DataFrame(
        {
            "request_id": request_ids.astype(object),
            "value_number": numbers,
            "value_text": texts,
            "label_time": label_time.reset_index(drop=True),
        }
    )
