"""The default app: histogram data drift, MLRun-compatible outputs plus per-feature drift."""

from typing import Any

import numpy as np

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import (
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
)
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.thresholds import Thresholds
from mm_dagster.stats.drift import (
    FeatureDrift,
    FeatureVerdict,
    feature_drifts,
    feature_verdict,
)
from mm_dagster.stats.null_thresholds import NullThresholdCache


class HistogramDataDriftApplication(ModelMonitoringApplicationBase):
    """TVD, Hellinger and KLD between each feature's window and reference histograms.

    Outputs metrics `hellinger_mean`, `kld_mean`, `tvd_mean`; result `general_drift`
    (mean of hellinger_mean and tvd_mean against `potential`/`detected`); result `feature_drift`
    (worst per-feature status from each feature's TVD null distribution at the window's size).
    """

    NAME = "histogram-data-drift"

    def __init__(
        self,
        potential: float = 0.5,
        detected: float = 0.7,
        *,
        mlrun_compatible_binning: bool = False,
        min_window_rows: int = 30,
        effect_size_floor: float = 0.1,
        feature_alpha_potential: float = 0.008,
        feature_alpha_detected: float = 0.001,
        drift_report: str = "on_detection",
    ) -> None:
        self.thresholds = Thresholds(potential, detected, what="general_drift", below_one=True)
        if min_window_rows < 1:
            raise MonitoringError(f"min_window_rows must be >= 1, got {min_window_rows}")
        if not 0 <= effect_size_floor < 1:
            raise MonitoringError(f"effect_size_floor must be in [0, 1), got {effect_size_floor}")
        if drift_report not in ("on_detection", "always", "never"):
            raise MonitoringError(f"drift_report must be on_detection, always or never, got {drift_report!r}")
        self.drift_report = drift_report
        self.mlrun_compatible_binning = mlrun_compatible_binning
        self.min_window_rows = min_window_rows
        self.effect_size_floor = effect_size_floor
        self.null_cache = NullThresholdCache(feature_alpha_potential, feature_alpha_detected)

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        ctx = monitoring_context
        if not ctx.feature_stats:
            ctx.logger.warning("endpoint has no reference feature_stats; no drift computed")
            return None
        drifts = feature_drifts(
            ctx.feature_stats, ctx.sample_df, mlrun_compatible_binning=self.mlrun_compatible_binning
        )
        if not drifts:
            ctx.logger.warning("no feature of the window has a reference histogram")
            return None
        tvd_mean = float(np.mean([d.tvd for d in drifts]))
        hellinger_mean = float(np.mean([d.hellinger for d in drifts]))
        kld_mean = float(np.mean([d.kld for d in drifts]))
        general = (hellinger_mean + tvd_mean) / 2
        too_small = len(ctx.sample_df) < self.min_window_rows
        general_status = ResultStatusApp.irrelevant if too_small else self.thresholds.status(general)
        per_feature = {d.feature: {"tvd": d.tvd, "hellinger": d.hellinger, "kld": d.kld} for d in drifts}
        verdicts = [feature_verdict(d, self.null_cache, self.effect_size_floor) for d in drifts]
        worst = max((v.status for v in verdicts), default=ResultStatusApp.no_detection)
        drifting = sorted(
            (v for v in verdicts if v.status >= ResultStatusApp.potential_detection),
            key=lambda v: -v.tvd,
        )
        feature_status = ResultStatusApp.irrelevant if too_small else worst
        report_uri = None
        flagged = max(general_status, feature_status) >= ResultStatusApp.potential_detection
        if self.drift_report == "always" or (self.drift_report == "on_detection" and flagged):
            report_uri = self._log_report(ctx, drifts, verdicts, (general, general_status))
        return [
            ModelMonitoringApplicationMetric("hellinger_mean", hellinger_mean),
            ModelMonitoringApplicationMetric("kld_mean", kld_mean),
            ModelMonitoringApplicationMetric("tvd_mean", tvd_mean),
            ModelMonitoringApplicationResult(
                name="general_drift",
                value=general,
                kind=ResultKindApp.data_drift,
                status=general_status,
                extra_data={"features": per_feature, "rows": len(ctx.sample_df)},
            ),
            ModelMonitoringApplicationResult(
                name="feature_drift",
                value=max(v.tvd for v in verdicts),
                kind=ResultKindApp.data_drift,
                status=feature_status,
                extra_data={
                    "report": report_uri,
                    "drifting_features": [v.feature for v in drifting],
                    "features": {
                        v.feature: {
                            "tvd": v.tvd,
                            "threshold_potential": v.threshold_potential,
                            "threshold_detected": v.threshold_detected,
                            "status": int(v.status),
                        }
                        for v in verdicts
                    },
                },
            ),
        ]

    def _log_report(
        self,
        ctx: MonitoringApplicationContext,
        drifts: list[FeatureDrift],
        verdicts: list[FeatureVerdict],
        general: tuple[float, ResultStatusApp],
    ) -> str:
        """The (endpoint, window) drift page, stored as an artifact next to plotly's JS."""
        from mm_dagster.reports.html import ensure_plotly_js
        from mm_dagster.reports.window_page import render_window_page, window_stats_of

        html = render_window_page(
            ctx.endpoint_name,
            ctx.window.key,
            len(ctx.sample_df),
            general,
            drifts,
            verdicts,
            ctx.feature_stats,
            window_stats_of(ctx.feature_stats, drifts, ctx.sample_df),
        )
        ensure_plotly_js(ctx.artifact_directory)
        key = f"drift-report-{ctx.window.start:%Y%m%dT%H%M}"
        return ctx.log_artifact(key, body=html, suffix=".html", unique_per_endpoint=True)
