"""Realized model performance on a window's labelled rows, judged against the reference's."""

from typing import Any

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.model_task import ModelTask
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.stats.performance import (
    MeasureVerdict,
    PerformanceRule,
    ReferencePerformance,
    judge,
    labelled_rows,
    measures,
)

SAMPLING_ERROR_METHOD = (
    "bootstrap on the labelled reference; standard error of the drop unit_sd * sqrt(1/n + 1/reference_rows)"
)


class PerformanceApplication(ModelMonitoringApplicationBase):
    """scikit-learn's metrics on the window's labelled rows (needs the endpoint's `task`).

    Classification: accuracy, precision, recall, F1 (binary: of the positive class; also macro,
    and per class for multiclass), ROC AUC and log loss (from the class scores). Regression: MAE,
    RMSE, MAPE, R². Each is a metric; `labelled_fraction`, `labelled_rows` and
    `unmatched_labels` (labels still waiting for their prediction) too. The result
    `model_performance` (kind model_performance) judges the `rule`'s measures against the
    reference's performance with the window's sampling error (`stats.performance`); its value is
    the first judged measure, its status the worst, `irrelevant` below `min_labelled` rows;
    `extra_data` has every measure with its reference value and the judged ones' verdicts.
    A reference without labels gives a warning and no result (the metrics still).
    """

    NAME = "model-performance"
    RESULT_NAMES = ("model_performance",)

    def __init__(self, *, min_labelled: int = 50, rule: PerformanceRule | None = None) -> None:
        if min_labelled < 1:
            raise MonitoringError(f"min_labelled must be >= 1, got {min_labelled}")
        self.min_labelled = min_labelled
        self.rule = rule or PerformanceRule()

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        ctx = monitoring_context
        task = ctx.model_endpoint.task
        if task is None:
            ctx.logger.warning(
                "endpoint declares no task (create_endpoint(..., task=ModelTask(...))): no performance"
            )
            return None
        selection = labelled_rows(task, ctx.sample_df)
        labelled = len(selection.rows)
        values = measures(task, selection.rows)
        outputs: list[ModelMonitoringApplicationResult | ModelMonitoringApplicationMetric] = [
            ModelMonitoringApplicationMetric("labelled_fraction", ctx.labelled_fraction),
            ModelMonitoringApplicationMetric("labelled_rows", float(labelled)),
            ModelMonitoringApplicationMetric("unmatched_labels", float(ctx.unmatched_labels)),
            *(ModelMonitoringApplicationMetric(name, value) for name, value in values.items()),
        ]
        stored = ctx.model_endpoint.reference_performance
        if stored is None:
            ctx.logger.warning(
                f"the reference has no labels (no {task.target!r} column when it was stored): no "
                "model_performance result; give a labelled reference to update_reference",
                target=task.target,
            )
            return outputs
        reference = ReferencePerformance.from_json(stored)
        outputs.append(self._result(task, values, reference, labelled, selection.without_prediction))
        return outputs

    def _result(
        self,
        task: ModelTask,
        values: dict[str, float],
        reference: ReferencePerformance,
        labelled: int,
        without_prediction: int,
    ) -> ModelMonitoringApplicationResult:
        judged = [m for m in self.rule.judged.get(task.kind, ()) if m in values]
        verdicts: dict[str, MeasureVerdict] = {}
        if labelled >= self.min_labelled:
            for measure in judged:
                verdict = judge(measure, values[measure], reference, labelled, self.rule)
                if verdict is not None:
                    verdicts[measure] = verdict
        if labelled < self.min_labelled:
            status = ResultStatusApp.irrelevant
        else:
            status = max((v.status for v in verdicts.values()), default=ResultStatusApp.no_detection)
        per_measure: dict[str, dict[str, Any]] = {
            name: {"value": value, "reference": reference.metrics.get(name)} for name, value in values.items()
        }
        for name, verdict in verdicts.items():
            per_measure[name] = verdict.to_json()
        return ModelMonitoringApplicationResult(
            name="model_performance",
            value=values[judged[0]] if judged else 0.0,
            kind=ResultKindApp.model_performance,
            status=status,
            extra_data={
                "task": task.kind.value,
                "value_measure": judged[0] if judged else None,
                "labelled_rows": labelled,
                "labelled_without_prediction": without_prediction,
                "min_labelled": self.min_labelled,
                "reference_rows": reference.rows,
                "judged": sorted(verdicts),
                "sampling_error": SAMPLING_ERROR_METHOD,
                "measures": per_measure,
            },
        )
