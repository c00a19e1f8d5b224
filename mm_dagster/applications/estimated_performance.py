"""Performance estimated without labels: CBPE for classification, DLE for regression (see
`stats.cbpe`, `stats.dle`), one `estimated_performance` result per endpoint and window."""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.model_cache import FittedModelCache
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.core.outputs import (
    AppOutput,
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
)
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.stats.cbpe import CBPEEstimator, fit_cbpe, invalid_score_rows
from mm_dagster.stats.dle import DLEEstimator, fit_dle
from mm_dagster.stats.performance_estimation import (
    CLASSIFICATION_MEASURES,
    REGRESSION_MEASURES,
    DropRule,
    Estimate,
    class_labels,
    finite_or_none,
)

Estimator = CBPEEstimator | DLEEstimator
FitKey = tuple[str, int, str, str]  # endpoint, reference version, segment, task


@dataclass(frozen=True)
class WindowEstimate:
    """What one window gave: the estimates over its valid rows and its invalid model outputs
    (per output column and reason)."""

    rows: int
    rows_estimated: int
    estimates: dict[str, Estimate]
    invalid: dict[str, dict[str, int]]

    @property
    def invalid_rows(self) -> int:
        return self.rows - self.rows_estimated


def _numeric_columns(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Output columns as floats; a value that is not a number becomes NaN (counted as missing)."""
    return np.column_stack(
        [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan) for c in columns]
    )


class EstimatedPerformanceApplication(ModelMonitoringApplicationBase):
    """Estimated model performance per window, before labels arrive.

    Needs the endpoint's `task` (`ModelTask`) and a labelled stored reference sample (the target
    column, the prediction and, for classification, the score columns; DLE also the features).
    CBPE/DLE is fitted once per (endpoint, reference version, task) and kept in a bounded cache on
    the app instance (`cache_size` endpoints). Per window: metrics `estimated_<measure>` with
    `estimated_<measure>_lower`/`_upper` (the +-3 SE sampling-error band), and a result
    `estimated_performance` (kind model_performance) whose value is the `primary_measure`'s estimate
    (default: roc_auc for classification, mae for regression) and whose status is the worst
    measure's, judged by `DropRule` against the reference's realized performance; `irrelevant` below
    `min_window_rows` valid rows. Rows with a score outside [0, 1], a missing output or an unknown
    predicted class are left out and reported in an `invalid_model_outputs` result (kind
    mm_app_anomaly) naming the column and count. A reference without labels or scores: a warning
    and no result.
    """

    NAME = "estimated-performance"
    RESULT_NAMES = ("estimated_performance", "invalid_model_outputs")

    def __init__(
        self,
        *,
        min_window_rows: int = 100,
        potential_sigmas: float = 2.0,
        detected_sigmas: float = 3.0,
        min_relative_drop: float = 0.02,
        primary_measure: str | None = None,
        dle_params: dict[str, Any] | None = None,
        cache_size: int = 4096,
    ) -> None:
        if min_window_rows < 1:
            raise MonitoringError(f"min_window_rows must be >= 1, got {min_window_rows}")
        if not 0 < potential_sigmas <= detected_sigmas:
            raise MonitoringError(
                f"need 0 < potential_sigmas <= detected_sigmas, got {potential_sigmas}, {detected_sigmas}"
            )
        if min_relative_drop < 0:
            raise MonitoringError(f"min_relative_drop must be >= 0, got {min_relative_drop}")
        known = (*CLASSIFICATION_MEASURES, *REGRESSION_MEASURES)
        if primary_measure is not None and primary_measure not in known:
            raise MonitoringError(f"primary_measure must be one of {list(known)}, got {primary_measure!r}")
        self.min_window_rows = min_window_rows
        self.rule = DropRule(potential_sigmas, detected_sigmas, min_relative_drop)
        self.primary_measure = primary_measure
        self.dle_params = dict(dle_params or {})
        self.fits: FittedModelCache[FitKey, Estimator | str] = FittedModelCache(cache_size)

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        ctx = monitoring_context
        task = ctx.model_endpoint.task
        if task is None:
            ctx.logger.info("endpoint declares no model task (ModelTask); no performance estimated")
            return None
        key = (*ctx.reference_key, json.dumps(task.to_json(), sort_keys=True))
        fitted = self.fits.get_or_fit(key, lambda: self._fit(ctx, task))
        if isinstance(fitted, str):
            ctx.logger.warning(f"no estimated performance: {fitted}")
            return None
        window = self._estimate_window(ctx, task, fitted)
        if window is None:
            return None
        outputs: list[AppOutput] = []
        if window.invalid_rows:
            outputs.append(self._invalid_outputs_result(ctx, window))
        if window.estimates:
            outputs.extend(self._estimate_outputs(task, fitted, window))
        return outputs

    def _fit(self, ctx: MonitoringApplicationContext, task: ModelTask) -> Estimator | str:
        """The fitted estimator, or why the endpoint's reference cannot give one."""
        reference = ctx.reference_df
        if reference is None:
            return "the endpoint has no stored reference sample"
        target = reference.get(task.target)
        if target is None or target.isna().all():
            return f"the reference sample has no labels (target column {task.target!r} is absent or empty)"
        outputs = [task.prediction, *task.scores.values()]
        missing = [c for c in outputs if c not in reference.columns]
        if missing:
            return f"the reference sample lacks the model output columns {missing}"
        try:
            if task.kind is TaskKind.regression:
                absent = [f for f in ctx.feature_names if f not in reference.columns]
                if absent:
                    return f"the reference sample lacks the features {absent} DLE needs"
                return fit_dle(
                    reference,
                    reference[task.prediction],
                    target,
                    feature_names=ctx.feature_names,
                    model_params=self.dle_params,
                )
            if not task.scores:
                return f"the {task.kind.value} task declares no score columns; CBPE needs the model's scores"
            return fit_cbpe(
                reference[list(task.scores.values())].to_numpy(dtype=float, na_value=np.nan),
                reference[task.prediction],
                target,
                task.classes,
                multiclass=task.kind is TaskKind.multiclass,
            )
        except (MonitoringError, ValueError, TypeError) as exc:
            return f"the reference sample cannot be used: {exc}"

    def _estimate_window(
        self, ctx: MonitoringApplicationContext, task: ModelTask, fitted: Estimator
    ) -> WindowEstimate | None:
        df = ctx.sample_df
        if "error" in df.columns:  # a failed request has no outputs to judge (operational-health counts it)
            df = df[df["error"].isna()]
        outputs = [task.prediction, *task.scores.values()]
        missing = [c for c in outputs if c not in df.columns]
        if missing:
            ctx.logger.warning(f"the window's events lack the model output columns {missing}")
            return None
        if isinstance(fitted, DLEEstimator):
            absent = [f for f in fitted.features if f not in df.columns]
            if absent:
                ctx.logger.warning(f"the window's events lack the features {absent}")
                return None
            prediction = _numeric_columns(df, [task.prediction])[:, 0]
            valid = np.isfinite(prediction)
            invalid = {task.prediction: {"missing": int((~valid).sum())}}
            features = df[list(fitted.features)]
            if not valid.all():
                features, prediction = features[valid], prediction[valid]
            estimates = fitted.estimate(features, prediction)
        else:
            columns = list(task.scores.values())
            scores = _numeric_columns(df, columns)
            bad = invalid_score_rows(scores)
            missing_scores = np.isnan(scores)
            predicted = class_labels(df[task.prediction])
            no_prediction = np.array([p is None for p in predicted], dtype=bool)
            unknown = fitted.unknown_predictions(predicted) & ~no_prediction
            valid = ~bad.any(axis=1) & ~no_prediction & ~unknown
            invalid = {
                column: {
                    "missing": int(missing_scores[:, k].sum()),
                    "outside_0_1": int((bad[:, k] & ~missing_scores[:, k]).sum()),
                }
                for k, column in enumerate(columns)
            }
            invalid[task.prediction] = {
                "missing": int(no_prediction.sum()),
                "unknown_class": int(unknown.sum()),
            }
            estimates = fitted.estimate(scores[valid], predicted[valid])
        counts = {col: {k: v for k, v in reasons.items() if v} for col, reasons in invalid.items()}
        return WindowEstimate(
            rows=len(df),
            rows_estimated=int(valid.sum()),
            estimates=estimates,
            invalid={col: reasons for col, reasons in counts.items() if reasons},
        )

    def _invalid_outputs_result(
        self, ctx: MonitoringApplicationContext, window: WindowEstimate
    ) -> ModelMonitoringApplicationResult:
        described = "; ".join(
            f"column {col!r}: "
            + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in reasons.items())
            for col, reasons in window.invalid.items()
        )
        ctx.logger.warning(
            f"endpoint {ctx.endpoint_name!r}: {window.invalid_rows} of {window.rows} rows have invalid "
            f"model outputs ({described}); left out of the estimate"
        )
        return ModelMonitoringApplicationResult(
            name="invalid_model_outputs",
            value=window.invalid_rows,
            kind=ResultKindApp.mm_app_anomaly,
            status=ResultStatusApp.detected,
            extra_data={"rows": window.rows, "invalid_rows": window.invalid_rows, "columns": window.invalid},
        )

    def _estimate_outputs(
        self, task: ModelTask, fitted: Estimator, window: WindowEstimate
    ) -> list[AppOutput]:
        too_small = window.rows_estimated < self.min_window_rows
        measures: dict[str, dict[str, Any]] = {}
        outputs: list[AppOutput] = []
        worst = ResultStatusApp.no_detection
        for measure, estimate in window.estimates.items():
            reference = fitted.reference.get(measure, float("nan"))
            status = ResultStatusApp.no_detection
            if np.isfinite(reference):
                status = self.rule.status(measure, estimate, reference)
            worst = max(worst, status)
            measures[measure] = {
                "estimate": estimate.value,
                "sampling_error": estimate.sampling_error,
                "lower": estimate.lower,
                "upper": estimate.upper,
                "reference": finite_or_none(reference),
                "drop": finite_or_none(self.rule.drop(measure, estimate.value, reference)),
                "status": int(ResultStatusApp.irrelevant if too_small else status),
            }
            outputs += [
                ModelMonitoringApplicationMetric(f"estimated_{measure}", estimate.value),
                ModelMonitoringApplicationMetric(f"estimated_{measure}_lower", estimate.lower),
                ModelMonitoringApplicationMetric(f"estimated_{measure}_upper", estimate.upper),
            ]
        primary = self._primary(task, window.estimates)
        extra: dict[str, Any] = {
            "method": "dle" if isinstance(fitted, DLEEstimator) else "cbpe",
            "task": task.kind.value,
            "primary_measure": primary,
            "rows": window.rows,
            "rows_estimated": window.rows_estimated,
            "reference_rows": fitted.reference_rows,
            "measures": measures,
        }
        if isinstance(fitted, CBPEEstimator):
            extra["calibrated_classes"] = [
                c
                for c, calibrator in zip(fitted.classes, fitted.calibrators, strict=True)
                if calibrator is not None
            ]
        outputs.append(
            ModelMonitoringApplicationResult(
                name="estimated_performance",
                value=window.estimates[primary].value,
                kind=ResultKindApp.model_performance,
                status=ResultStatusApp.irrelevant if too_small else worst,
                extra_data=extra,
            )
        )
        return outputs

    def _primary(self, task: ModelTask, estimates: dict[str, Estimate]) -> str:
        default = "mae" if task.kind is TaskKind.regression else "roc_auc"
        preferred = self.primary_measure or default
        return preferred if preferred in estimates else next(iter(estimates))
