"""Model performance estimated without labels: what CBPE (`stats.cbpe`, classification) and DLE
(`stats.dle`, regression) share — an estimate with its sampling-error band, the status of an
estimated drop against the reference's realized performance, and class labels in one form.

Sampling error. For a window of n rows the standard error of an estimated measure is SE1/√n, where
SE1 (the "unit" sampling error) is derived once from the labelled reference (NannyML 0.13's analytic
approximations, in `cbpe` and `dle`). The band is the estimate ± 3 SE1/√n (NannyML's
`SAMPLING_ERROR_RANGE`), clipped to the measure's range ([0, 1] for classification measures,
[0, ∞) for errors).

Status. `drop` is how much worse the estimate is than the reference's realized value (reference -
estimate for accuracy-like measures, estimate - reference for errors). A drop is potential when it
exceeds both `potential_sigmas` sampling errors and the effect floor `min_relative_drop * |reference|`
(so a 1M-row window does not alarm on a 0.1% dip), detected past `detected_sigmas` and the floor.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.schemas import ResultStatusApp

BAND_SIGMAS = 3.0
CLASSIFICATION_MEASURES = ("roc_auc", "accuracy", "precision", "recall", "f1")
REGRESSION_MEASURES = ("mae", "rmse")
LOWER_IS_BETTER = frozenset(REGRESSION_MEASURES)
MEASURE_RANGE: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        **dict.fromkeys(CLASSIFICATION_MEASURES, (0.0, 1.0)),
        **dict.fromkeys(REGRESSION_MEASURES, (0.0, math.inf)),
    }
)


@dataclass(frozen=True)
class Estimate:
    """An estimated measure for one window: the value, its standard error and the +-3 SE band."""

    value: float
    sampling_error: float
    lower: float
    upper: float


def estimate_with_band(measure: str, value: float, unit_error: float, rows: int) -> Estimate:
    """`value` with its sampling error SE1/√rows and the band value +- 3 SE clipped to the range."""
    error = unit_error / math.sqrt(rows) if rows > 0 else math.nan
    low, high = MEASURE_RANGE[measure]
    return Estimate(
        value=float(value),
        sampling_error=float(error),
        lower=float(max(low, value - BAND_SIGMAS * error)),
        upper=float(min(high, value + BAND_SIGMAS * error)),
    )


@dataclass(frozen=True)
class DropRule:
    """When an estimated drop against the reference is potential or detected (see module doc)."""

    potential_sigmas: float = 2.0
    detected_sigmas: float = 3.0
    min_relative_drop: float = 0.02

    def drop(self, measure: str, estimate: float, reference: float) -> float:
        return estimate - reference if measure in LOWER_IS_BETTER else reference - estimate

    def status(self, measure: str, estimate: Estimate, reference: float) -> ResultStatusApp:
        drop = self.drop(measure, estimate.value, reference)
        floor = self.min_relative_drop * abs(reference)
        if drop > floor and drop > self.detected_sigmas * estimate.sampling_error:
            return ResultStatusApp.detected
        if drop > floor and drop > self.potential_sigmas * estimate.sampling_error:
            return ResultStatusApp.potential_detection
        return ResultStatusApp.no_detection


BOOLEAN_CLASSES: Mapping[str, str] = MappingProxyType({"True": "1", "true": "1", "False": "0", "false": "0"})


def class_name(label: object) -> str:
    """One name per class: 1, 1.0, "1", True and "true" are all "1" (a binary task may declare its
    positive class as "1" or "True" whatever type its predictions and targets have)."""
    if isinstance(label, bool | np.bool_):
        return "1" if label else "0"
    if isinstance(label, float | np.floating) and float(label).is_integer():
        label = int(label)
    text = str(label)
    return BOOLEAN_CLASSES.get(text, text)


def class_labels(values: Any) -> np.ndarray:
    """`class_name` of every value (vectorised); missing values are None. An object array."""
    series = pd.Series(values)
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series.dtype):
        labels = series.astype(object).map(class_name)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=float, na_value=np.nan)
        finite = numbers[~missing]
        if np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)):
            labels = pd.Series(np.where(missing, 0, numbers).astype(np.int64)).map(str)
        else:
            labels = series.map(str)
    else:
        labels = series.map(lambda v: BOOLEAN_CLASSES.get(str(v), str(v)))
    out: np.ndarray = labels.to_numpy(dtype=object)
    out[missing] = None
    return out


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
