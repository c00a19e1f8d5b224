"""Class labels as the strings a `ModelTask` keys its classes by (light: labels are validated
in serving processes, which must not import scikit-learn)."""

import numpy as np
import pandas as pd


def class_keys(values: pd.Series) -> np.ndarray:
    """Class labels as the strings `ModelTask.scores` is keyed by: integral numbers without a
    decimal part (1.0 -> "1"), booleans as "True"/"False", text as is. `values` has no nulls."""
    if pd.api.types.is_bool_dtype(values.dtype):
        flags: np.ndarray = np.where(values.to_numpy(dtype=bool), "True", "False").astype(object)
        return flags
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
        keys: np.ndarray = numbers.astype(str).astype(object)
        integral = np.isfinite(numbers) & (numbers == np.round(numbers))
        keys[integral] = numbers[integral].astype(np.int64).astype(str)
        return keys
    texts: np.ndarray = values.astype(str).to_numpy(dtype=object)
    return texts
