"""What an app that asked for silent endpoints gets for one: an empty window of its events."""

from types import MappingProxyType

import pandas as pd

from mm_dagster.core.endpoint import BOOL, FLOAT, STRING, ModelEndpoint

_DTYPES = MappingProxyType({FLOAT: "float64", BOOL: "bool", STRING: "string[pyarrow]"})


def empty_sample(endpoint: ModelEndpoint) -> pd.DataFrame:
    """No rows, the columns (and dtypes) a window of the endpoint's stored events has."""
    columns = {
        "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
        "request_id": pd.Series(dtype="string[pyarrow]"),
        "latency_us": pd.Series(dtype="int64"),
        "error": pd.Series(dtype="string[pyarrow]"),
    }
    for column in endpoint.columns:
        columns[column] = pd.Series(dtype=_DTYPES[endpoint.column_types.get(column, FLOAT)])
    return pd.DataFrame(columns)
