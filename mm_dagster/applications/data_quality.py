"""Data quality: missing, non-finite, out-of-range and never-seen values, and rejected events."""

import re
from typing import Any

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.model_cache import PreparedReferences
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.thresholds import check_window_alphas
from mm_dagster.stats.data_quality import check_status, rate_checks

NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_]")


class DataQualityApplication(ModelMonitoringApplicationBase):
    """One `data_quality` result per endpoint and window (kind `mm_app_anomaly`; status the worst
    check's; value the largest rise of a rate over its reference rate), each feature's rates and
    verdicts in `extra_data.features`, and a metric per feature and rate
    (`<check>_rate__<feature>`, off with `feature_metrics=False`). The rule is in
    `mm_dagster.stats.data_quality`: a binomial test against the reference rate within the
    window's budget (`window_alpha_*`, shared by all checks) and a floor on the rise
    (`min_rate_increase`, default 1 percentage point)."""

    NAME = "data-quality"
    RESULT_NAMES = ("data_quality",)
    reads_reference_plans = True

    def __init__(
        self,
        *,
        min_rate_increase: float = 0.01,
        window_alpha_potential: float = 0.005,
        window_alpha_detected: float = 0.0005,
        min_window_rows: int = 30,
        feature_metrics: bool = True,
    ) -> None:
        if not 0 <= min_rate_increase < 1:
            raise MonitoringError(f"min_rate_increase must be in [0, 1), got {min_rate_increase}")
        check_window_alphas(window_alpha_potential, window_alpha_detected)
        if min_window_rows < 1:
            raise MonitoringError(f"min_window_rows must be >= 1, got {min_window_rows}")
        self.min_rate_increase = min_rate_increase
        self.window_alpha_potential = window_alpha_potential
        self.window_alpha_detected = window_alpha_detected
        self.min_window_rows = min_window_rows
        self.feature_metrics = feature_metrics
        self._references = PreparedReferences()

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        ctx = monitoring_context
        if not ctx.shared_feature_stats:
            ctx.logger.warning("endpoint has no reference feature_stats; no data quality computed")
            return None
        prepared = self._references.of(ctx)
        checks = rate_checks(ctx.shared_feature_stats, ctx.sample_df, ctx.invalid_events, prepared)
        statuses = [
            check_status(
                c,
                len(checks) * ctx.runs_of_endpoint,  # shared with the segments' runs
                self.window_alpha_potential,
                self.window_alpha_detected,
                self.min_rate_increase,
            )
            for c in checks
        ]
        features: dict[str, dict[str, Any]] = {}
        metrics = []
        for check, status in zip(checks, statuses, strict=True):
            entry = {
                "rate": check.rate,
                "reference_rate": check.reference_rate,
                "count": check.count,
                "status": int(status),
            }
            features.setdefault(check.feature or "(endpoint)", {})[check.check] = entry
            if check.feature is None:
                metrics.append(ModelMonitoringApplicationMetric(check.check, float(check.count)))
            elif self.feature_metrics:
                name = f"{check.check}_rate__{NOT_IN_NAME.sub('_', check.feature)}"
                metrics.append(ModelMonitoringApplicationMetric(name, check.rate))
        worst = max(statuses, default=ResultStatusApp.no_detection)
        too_small = len(ctx.sample_df) < self.min_window_rows
        problems = [
            f"{c.feature}: {c.check}" if c.feature else c.check
            for c, s in sorted(zip(checks, statuses, strict=True), key=lambda cs: -int(cs[1]))
            if s >= ResultStatusApp.potential_detection
        ]
        rise = max((c.rate - c.reference_rate for c in checks if c.total), default=0.0)
        metrics.append(ModelMonitoringApplicationMetric("worst_rate_increase", max(rise, 0.0)))
        result = ModelMonitoringApplicationResult(
            name="data_quality",
            value=max(rise, 0.0),
            kind=ResultKindApp.mm_app_anomaly,
            status=ResultStatusApp.irrelevant if too_small else worst,
            extra_data={
                "problems": problems,
                "rows": len(ctx.sample_df),
                "invalid_events": dict(ctx.invalid_events),
                "features": features,
            },
        )
        return [result, *metrics]
