"""Serving health: prediction mean, error rate and latency per window, with an error-rate result."""

import numpy as np

from mm_dagster.applications import (
    ModelMonitoringApplicationBase,
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
    MonitoringApplicationContext,
)
from mm_dagster.schemas import ResultKindApp, Thresholds


class ServingHealthApplication(ModelMonitoringApplicationBase):
    NAME = "serving-health"

    def __init__(self, potential_error_rate: float = 0.02, detected_error_rate: float = 0.1) -> None:
        self.thresholds = Thresholds(
            potential_error_rate,
            detected_error_rate,
            what="error rate (potential_error_rate, detected_error_rate)",
        )

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> list:
        df = monitoring_context.sample_df
        errors = df["error"].notna()
        error_rate = float(errors.mean())
        outputs: list = [
            ModelMonitoringApplicationMetric("requests", float(len(df))),
            ModelMonitoringApplicationMetric("error_rate", error_rate),
            # Events the recorder could not store in this window (reasons in the logs).
            ModelMonitoringApplicationMetric(
                "invalid_events", float(sum(monitoring_context.invalid_events.values()))
            ),
        ]
        latency = df["latency_us"].dropna()
        if len(latency):
            outputs.append(
                ModelMonitoringApplicationMetric("latency_p95_us", float(np.percentile(latency, 95)))
            )
        for label in monitoring_context.label_names:
            values = df.loc[~errors, label]
            if values.dtype.kind in "fiu" and values.notna().any():
                outputs.append(ModelMonitoringApplicationMetric(f"{label}_mean", float(values.mean())))
        status = self.thresholds.status(error_rate)
        outputs.append(
            ModelMonitoringApplicationResult(
                name="error_rate",
                value=error_rate,
                kind=ResultKindApp.system_performance,
                status=status,
                extra_data={"errors": int(errors.sum()), "requests": len(df)},
            )
        )
        return outputs
