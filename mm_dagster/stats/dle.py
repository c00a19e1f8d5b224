"""DLE (direct loss estimation, as in NannyML 0.13): regression error of a window estimated without
labels.

Fit, on a labelled reference (once per reference): two gradient-boosted regressors (scikit-learn's
HistGradientBoostingRegressor, squared loss) learn each row's absolute error |y - ŷ| and squared
error (y - ŷ)² from the features and the prediction ŷ. NannyML uses LightGBM with 100 trees of 31
leaves at learning rate 0.1; here 15 trees of at most 127 leaves at learning rate 0.4, because a
window costs one tree walk per row and tree (30 walks per row instead of 200 keep the app within
3x the drift app, bench/estimation.py). A row's error is one noisy draw, so a leaf holds at least
0.3% of the reference (and 20 rows, LightGBM's floor). On NannyML's car-price data the estimates
are as close to the realized errors as NannyML's (tests/test_golden_nannyml; there the chunks' own
sampling noise moves the agreement by about 20% between regressor settings).

A categorical feature becomes a number: the rank of its category by the mean reference |y - ŷ|
(for the squared-error model: by the mean (y - ŷ)²), among its MAX_CATEGORIES most frequent
values; other, unseen and missing values are missing. For squared loss a threshold on that order
is the best split of the categories into two groups (Fisher, 1958; LightGBM sorts categories the
same way), and it avoids HistGradientBoosting's native categorical path, whose per-call
preprocessing costs more than the trees on a 1,000-row window. Fitting and predicting use one
OpenMP thread: apps run beside each other on shared cores, where HistGradientBoosting's thread
pool is an order of magnitude slower.

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
from threadpoolctl import ThreadpoolController

from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.performance_estimation import Estimate, estimate_with_band

MIN_REFERENCE_ROWS = 100
# Categories kept per feature (the most frequent); rarer ones count as missing.
MAX_CATEGORIES = 250
ERROR_TARGETS = ("absolute", "squared")
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


@dataclass(frozen=True)
class CategoryRanks:
    """One categorical feature as numbers, one order per error model: `categories` are the most
    frequent reference values, `ranks[target][i]` the rank of categories[i] by that error's mean
    (one more entry, NaN, for values that are not among them)."""

    categories: pd.Index
    ranks: Mapping[str, np.ndarray]

    @classmethod
    def fit(cls, series: pd.Series, errors: Mapping[str, np.ndarray]) -> "CategoryRanks":
        values = series.astype("string")
        present = values.notna().to_numpy()
        frame = pd.DataFrame({"category": values[present].to_numpy()})
        for target, error in errors.items():
            frame[target] = error[present]
        stats = frame.groupby("category", observed=True).agg(["size", "mean"])
        kept = stats.nlargest(MAX_CATEGORIES, (next(iter(errors)), "size"))
        ranks = {t: np.r_[kept[(t, "mean")].rank(method="first").to_numpy() - 1.0, np.nan] for t in errors}
        return cls(pd.Index(kept.index, dtype="string"), ranks)

    def encode(self, series: pd.Series) -> dict[str, np.ndarray]:
        """Per error model, each value's rank; NaN for missing, unseen and rare values."""
        positions = self.categories.get_indexer(series.astype("string"))  # -1: the trailing NaN
        return {target: ranks[positions] for target, ranks in self.ranks.items()}


def _numeric_block(features: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    try:
        block: np.ndarray = features[list(columns)].to_numpy(dtype=float, na_value=np.nan)
    except (ValueError, TypeError):  # a column that is not numbers: say which
        block = np.column_stack([numeric_values(features[c], f"feature {c!r}") for c in columns])
    return block


@dataclass(frozen=True)
class DLEEstimator:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: Mapping[str, CategoryRanks]
    absolute_error: HistGradientBoostingRegressor
    squared_error: HistGradientBoostingRegressor
    unit_errors: Mapping[str, float]
    reference: Mapping[str, float]
    reference_rows: int
    model_params: Mapping[str, Any] = field(default_factory=dict)
    threads: ThreadpoolController = field(default_factory=ThreadpoolController, repr=False, compare=False)

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def design(self, features: pd.DataFrame, prediction: np.ndarray) -> dict[str, np.ndarray]:
        """Each error model's input: numeric features, ranked categorical features, the prediction."""
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise MonitoringError(f"feature columns {missing} are missing")
        shared = [_numeric_block(features, self.numeric)] if self.numeric else []
        encoded = [self.categories[c].encode(features[c]) for c in self.categorical]
        y_hat = np.asarray(prediction, dtype=float)[:, None]
        if not encoded:
            both = np.hstack([*shared, y_hat])
            return dict.fromkeys(ERROR_TARGETS, both)
        return {
            target: np.hstack([*shared, *(e[target][:, None] for e in encoded), y_hat])
            for target in ERROR_TARGETS
        }

    def point_estimates(self, features: pd.DataFrame, prediction: np.ndarray) -> dict[str, float]:
        x = self.design(features, prediction)
        with self.threads.limit(limits=1, user_api="openmp"):
            absolute = np.maximum(0.0, self.absolute_error.predict(x["absolute"]))
            squared = np.maximum(0.0, self.squared_error.predict(x["squared"]))
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


def _regressor(rows: int, params: Mapping[str, Any]) -> HistGradientBoostingRegressor:
    settings: dict[str, Any] = {
        "max_iter": 15,
        "learning_rate": 0.4,
        "max_leaf_nodes": 127,
        "min_samples_leaf": max(MIN_LEAF_ROWS, round(MIN_LEAF_SHARE * rows)),
        "early_stopping": False,
        "random_state": 0,
        **params,
    }
    return HistGradientBoostingRegressor(**settings)


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
    params = dict(model_params or {})
    errors = {"absolute": np.abs(y - y_hat), "squared": (y - y_hat) ** 2}
    estimator = DLEEstimator(
        numeric=numeric,
        categorical=categorical,
        categories={c: CategoryRanks.fit(frame[c], errors) for c in categorical},
        absolute_error=_regressor(len(y), params),
        squared_error=_regressor(len(y), params),
        unit_errors=unit_sampling_errors(y - y_hat),
        reference={
            "mae": float(mean_absolute_error(y, y_hat)),
            "rmse": float(root_mean_squared_error(y, y_hat)),
        },
        reference_rows=int(usable.sum()),
        model_params=params,
    )
    x = estimator.design(frame, y_hat)
    with estimator.threads.limit(limits=1, user_api="openmp"):
        estimator.absolute_error.fit(x["absolute"], errors["absolute"])
        estimator.squared_error.fit(x["squared"], errors["squared"])
    return estimator
