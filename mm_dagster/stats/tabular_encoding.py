"""Raw feature columns to a float matrix, with the encodings learnt from a reference frame.

Two encodings, as NannyML's multivariate calculators use them:
- `FrequencyEncoding` (data reconstruction): continuous columns as floats with missing and
  non-finite values imputed by the reference mean; categorical columns (bool, string, object,
  category) imputed by the reference's most frequent value, then replaced by that value's share of
  the reference (category_encoders' `CountEncoder(normalize=True)`: unseen values get 0).
- `OrdinalEncoding` (domain classifier): continuous columns as floats with NaN for missing and
  non-finite values; categorical columns as codes of the reference's most frequent values, one
  code for every other value, NaN for missing (what `HistGradientBoostingClassifier` takes natively).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mm_dagster.core.errors import MonitoringError

# HistGradientBoostingClassifier bins categories into at most 255 codes (0..254).
MAX_CLASSIFIER_CATEGORIES = 254


def is_categorical(series: pd.Series) -> bool:
    """NannyML's rule: bool, string, object and category columns are categorical."""
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    )


def split_by_type(reference: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """(continuous, categorical) column names, each in the order given."""
    missing = [c for c in columns if c not in reference.columns]
    if missing:
        raise MonitoringError(f"reference has no column(s) {missing}")
    categorical = [c for c in columns if is_categorical(reference[c])]
    return [c for c in columns if c not in categorical], categorical


def finite_floats(series: pd.Series, column: str) -> np.ndarray:
    """The column as float64, NaN for missing and non-finite values."""
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise MonitoringError(f"column {column!r} is not numeric: {exc}") from exc
    finite: np.ndarray = np.where(np.isfinite(values), values, np.nan)
    return finite


def category_codes(series: pd.Series, categories: list[object]) -> tuple[np.ndarray, np.ndarray]:
    """Each value's index in `categories` (-1 if absent) and the missing-value mask."""
    missing = series.isna().to_numpy()
    codes = pd.Categorical(series, categories=categories).codes.astype(np.int64)
    return codes, missing


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise MonitoringError(f"window has no column(s) {absent}")


@dataclass(frozen=True, eq=False)
class FrequencyEncoding:
    """Imputation plus frequency encoding, fitted on a reference (see the module docstring)."""

    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    means: dict[str, float]
    categories: dict[str, list[object]]
    shares: dict[str, np.ndarray]  # per category column: shares of `categories`, then 0 for unseen
    modes: dict[str, int]  # index of the most frequent category

    @classmethod
    def fit(cls, reference: pd.DataFrame, columns: list[str]) -> "FrequencyEncoding":
        continuous, categorical = split_by_type(reference, columns)
        means: dict[str, float] = {}
        for column in continuous:
            values = finite_floats(reference[column], column)
            if np.isnan(values).all():
                raise MonitoringError(f"reference column {column!r} has no finite value")
            means[column] = float(np.nanmean(values))
        categories: dict[str, list[object]] = {}
        shares: dict[str, np.ndarray] = {}
        modes: dict[str, int] = {}
        for column in categorical:
            counts = reference[column].value_counts(dropna=True)
            if counts.empty:
                raise MonitoringError(f"reference column {column!r} has no value")
            # SimpleImputer(most_frequent): the most frequent value, the smallest on ties.
            top = counts[counts == counts.max()].index
            mode = min(top, key=lambda v: (str(type(v)), v))
            counts.loc[mode] += int(reference[column].isna().sum())
            categories[column] = list(counts.index)
            shares[column] = np.append(counts.to_numpy(dtype=np.float64) / len(reference), 0.0)
            modes[column] = categories[column].index(mode)
        return cls(tuple(columns), tuple(categorical), means, categories, shares, modes)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        _check_columns(frame, self.columns)
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, column in enumerate(self.columns):
            if column in self.means:
                values = finite_floats(frame[column], column)
                out[:, j] = np.where(np.isnan(values), self.means[column], values)
            else:
                codes, missing = category_codes(frame[column], self.categories[column])
                codes[missing] = self.modes[column]
                out[:, j] = self.shares[column][codes]  # code -1 (unseen) reads the trailing 0
        return out


@dataclass(frozen=True, eq=False)
class OrdinalEncoding:
    """Floats and category codes for a gradient-boosted classifier (see the module docstring)."""

    columns: tuple[str, ...]
    categories: dict[str, list[object]]  # the most frequent reference values, code = index

    @classmethod
    def fit(cls, reference: pd.DataFrame, columns: list[str]) -> "OrdinalEncoding":
        _, categorical = split_by_type(reference, columns)
        categories = {
            column: list(reference[column].value_counts(dropna=True).index[:MAX_CLASSIFIER_CATEGORIES])
            for column in categorical
        }
        return cls(tuple(columns), categories)

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([c in self.categories for c in self.columns], dtype=bool)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        _check_columns(frame, self.columns)
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, column in enumerate(self.columns):
            if column in self.categories:
                codes, missing = category_codes(frame[column], self.categories[column])
                values = codes.astype(np.float64)
                values[codes < 0] = len(self.categories[column])  # every other value: one code
                values[missing] = np.nan
                out[:, j] = values
            else:
                out[:, j] = finite_floats(frame[column], column)
        return out
