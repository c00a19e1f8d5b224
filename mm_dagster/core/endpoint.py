"""The model endpoint (spec §1) as a plain value, and the column types events are stored as."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from mm_dagster.core.model_task import ModelTask

FeatureStats = dict[str, dict[str, Any]]

FLOAT, BOOL, STRING = "float64", "bool", "string"
COLUMN_TYPES = (FLOAT, BOOL, STRING)
DEFAULT_MAX_SEGMENTS = 50


@dataclass(frozen=True)
class ModelEndpoint:
    id: str
    name: str
    feature_names: list[str]
    label_names: list[str]
    column_types: dict[str, str]
    feature_stats: FeatureStats
    model_name: str = ""
    model_version: str = ""
    model_uri: str = ""
    reference_rows: int = 0
    created_at: datetime | None = None
    first_request: datetime | None = None
    last_request: datetime | None = None
    error_count: int = 0
    event_count: int = 0
    reference_version: int = 1
    task: ModelTask | None = None
    # Columns whose values split the traffic into segments (see core.segments); [] for none.
    segment_columns: list[str] = field(default_factory=list)
    max_segments: int = DEFAULT_MAX_SEGMENTS
    # stats.performance.reference_performance(...).to_json() of a labelled reference, else None
    reference_performance: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, *self.label_names]


def column_type_of(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series.dtype):
        return BOOL
    if pd.api.types.is_numeric_dtype(series.dtype):
        return FLOAT
    return STRING
