"""DLE (direct loss estimation, as in NannyML 0.13): regression error of a window estimated without
labels.

Fit, on a labelled reference (once per reference): two gradient-boosted regressors (scikit-learn's
HistGradientBoostingRegressor, squared loss; NannyML uses LightGBM: 100 trees of at most 31 leaves,
learning rate 0.1) learn each row's absolute error |y - ŷ| and squared error (y - ŷ)² from the
features and the prediction ŷ. A row's error is one noisy draw, so a leaf holds at least 0.3% of
the reference (and 20 rows, LightGBM's floor): on NannyML's car-price data this brings the
estimates closer to the realized errors than LightGBM's 20-row leaves (tests/test_golden_nannyml).
Categorical features are ordinal-encoded (unseen or missing categories: missing) and split on
natively. Fitting and predicting use one OpenMP thread: apps run beside each other on shared
cores, where HistGradientBoosting's thread pool is an order of magnitude slower.

Estimate, per window:  MAE = mean_i max(0, f_abs(x_i, ŷ_i)),  RMSE = √(mean_i max(0, f_sq(x_i, ŷ_i))).

Unit sampling errors SE1 (a window of n rows has standard error SE1/√n), from the reference errors
e = y - ŷ:  MAE: SE1 = std(|e|);  RMSE: SE1 = std(e²) / (2 √mean(e²))  (the delta method on √MSE).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, root_mean_squared_error
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.performance_estimation import Estimate, estimate_with_band

MIN_REFERENCE_ROWS = 100
# HistGradientBoosting splits natively on at most 255 bins; rarer categories are grouped.
MAX_CATEGORIES = 250
MIN_LEAF_ROWS = 20
MIN_LEAF_SHARE = 0.003


def numeric_values(values: object, what: str) -> np.ndarray:
    """Float values (missing as NaN); raises naming `what` and an example when a value is not a
    number (a regression endpoint given class labels)."""
    series = pd.Series(values)
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        floats: np.ndarray = series.to_numpy(dtype=float, na_value=np.nan)
        return floats
    numbers = pd.to_numeric(series, errors="coerce")
    wrong = numbers.isna() & series.notna()
    if wrong.any():
        raise MonitoringError(
            f"{what} holds {int(wrong.sum())} non-numeric values (e.g. {series[wrong].iloc[0]!r}); "
            "a regression task needs numbers"
        )
    coerced: np.ndarray = numbers.to_numpy(dtype=float, na_value=np.nan)
    return coerced


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype))


def _as_objects(frame: pd.DataFrame) -> np.ndarray:
    """Categorical columns as an object array with np.nan for missing (what OrdinalEncoder takes)."""
    objects = frame.astype(object)
    values: np.ndarray = objects.where(frame.notna(), np.nan).to_numpy(dtype=object)
    return values


@dataclass(frozen=True)
class DLEEstimator:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    encoder: OrdinalEncoder | None
    absolute_error: HistGradientBoostingRegressor
    squared_error: HistGradientBoostingRegressor
    unit_errors: Mapping[str, float]
    reference: Mapping[str, float]
    reference_rows: int
    model_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def design(self, features: pd.DataFrame, prediction: np.ndarray) -> np.ndarray:
        """Model input: numeric features, encoded categorical features, then the prediction."""
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise MonitoringError(f"feature columns {missing} are missing")
        blocks = [
            np.column_stack([numeric_values(features[c], f"feature {c!r}") for c in self.numeric])
            if self.numeric
            else np.empty((len(features), 0))
        ]
        if self.encoder is not None:
            blocks.append(self.encoder.transform(_as_objects(features[list(self.categorical)])))
        blocks.append(np.asarray(prediction, dtype=float)[:, None])
        return np.hstack(blocks)

    def point_estimates(self, features: pd.DataFrame, prediction: np.ndarray) -> dict[str, float]:
        x = self.design(features, prediction)
        with threadpool_limits(limits=1, user_api="openmp"):
            absolute = np.maximum(0.0, self.absolute_error.predict(x))
            squared = np.maximum(0.0, self.squared_error.predict(x))
        return {"mae": float(absolute.mean()), "rmse": float(np.sqrt(squared.mean()))}

    def estimate(self, features: pd.DataFrame, prediction: np.ndarray) -> dict[str, Estimate]:
        """MAE and RMSE with their sampling-error bands (rows with a prediction only)."""
        if len(prediction) == 0:
            return {}
        values = self.point_estimates(features, prediction)
        return {
            measure: estimate_with_band(measure, value, self.unit_errors[measure], len(prediction))
            for measure, value in values.items()
            if np.isfinite(value)
        }


def _regressor(
    categorical_mask: np.ndarray, rows: int, params: Mapping[str, Any]
) -> HistGradientBoostingRegressor:
    settings: dict[str, Any] = {
        "max_iter": 100,
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": max(MIN_LEAF_ROWS, round(MIN_LEAF_SHARE * rows)),
        "early_stopping": False,
        "random_state": 0,
        **params,
    }
    return HistGradientBoostingRegressor(categorical_features=categorical_mask, **settings)


def unit_sampling_errors(errors: np.ndarray) -> dict[str, float]:
    squared = errors**2
    mean_squared = float(squared.mean())
    rmse_error = float(np.std(squared) / (2.0 * np.sqrt(mean_squared))) if mean_squared > 0 else 0.0
    return {"mae": float(np.std(np.abs(errors))), "rmse": rmse_error}


def fit_dle(
    features: pd.DataFrame,
    prediction: object,
    target: object,
    *,
    feature_names: Sequence[str] | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> DLEEstimator:
    """Fit DLE on a labelled reference (`features` holds `feature_names`, default every column).
    Rows without a target or a prediction are left out; raises MonitoringError when the reference
    cannot support an estimate (too few labelled rows, non-numeric targets or predictions)."""
    names = list(features.columns if feature_names is None else feature_names)
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise MonitoringError(f"the reference has no feature columns {missing}")
    y = numeric_values(target, "the reference target")
    y_hat = numeric_values(prediction, "the reference prediction")
    usable = np.isfinite(y) & np.isfinite(y_hat)
    if usable.sum() < MIN_REFERENCE_ROWS:
        raise MonitoringError(
            f"the reference has {int(usable.sum())} rows with a numeric target and prediction; "
            f"DLE needs at least {MIN_REFERENCE_ROWS}"
        )
    frame = features.loc[usable, names].reset_index(drop=True)
    y, y_hat = y[usable], y_hat[usable]
    categorical = tuple(c for c in names if _is_categorical(frame[c]))
    numeric = tuple(c for c in names if c not in categorical)
    encoder = None
    if categorical:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=MAX_CATEGORIES,
        ).fit(_as_objects(frame[list(categorical)]))
    params = dict(model_params or {})
    mask = np.r_[np.zeros(len(numeric), dtype=bool), np.ones(len(categorical), dtype=bool), False]
    estimator = DLEEstimator(
        numeric=numeric,
        categorical=categorical,
        encoder=encoder,
        absolute_error=_regressor(mask, len(y), params),
        squared_error=_regressor(mask, len(y), params),
        unit_errors=unit_sampling_errors(y - y_hat),
        reference={
            "mae": float(mean_absolute_error(y, y_hat)),
            "rmse": float(root_mean_squared_error(y, y_hat)),
        },
        reference_rows=int(usable.sum()),
        model_params=params,
    )
    x = estimator.design(frame, y_hat)
    with threadpool_limits(limits=1, user_api="openmp"):
        estimator.absolute_error.fit(x, np.abs(y - y_hat))
        estimator.squared_error.fit(x, (y - y_hat) ** 2)
    return estimator
