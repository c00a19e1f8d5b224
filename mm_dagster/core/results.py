"""Stored results, metrics and app failures as read back from the results store."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp


@dataclass(frozen=True)
class StoredResult:
    endpoint_id: str
    app: str
    name: str
    window_start: datetime
    window_end: datetime
    kind: ResultKindApp
    status: ResultStatusApp
    value: float
    extra_data: dict[str, Any]
    model_version: str | None = None
    reference_version: int | None = None
    segment: str = ""  # the segment key ("" endpoint-wide; see core.segments)


@dataclass(frozen=True)
class StoredMetric:
    endpoint_id: str
    app: str
    name: str
    window_start: datetime
    window_end: datetime
    value: float
    model_version: str | None = None
    reference_version: int | None = None
    segment: str = ""  # the segment key ("" endpoint-wide; see core.segments)


@dataclass(frozen=True)
class AppFailure:
    endpoint_id: str
    app: str
    window_start: datetime
    window_end: datetime
    error: str
    segment: str = ""
