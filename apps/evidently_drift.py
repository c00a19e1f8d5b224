"""Evidently's DataDriftPreset per window, with explicit methods and bounded samples.

Emits a `data_drift` result from the share of drifted columns, the per-column drift scores as
metrics, the report's HTML as an artifact (linked from the Dagster UI) and, when drift is found,
a snapshot in the Evidently workspace (`evidently ui --workspace <path>` shows them).
"""

import re
from typing import Any

from mm_dagster.applications import (
    EvidentlyModelMonitoringApplicationBase,
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
    MonitoringApplicationContext,
)
from mm_dagster.errors import MonitoringError
from mm_dagster.schemas import ResultKindApp, Thresholds

_COLUMN = re.compile(r"ValueDrift\(column=([^,]+),")


class EvidentlyDataDriftApplication(EvidentlyModelMonitoringApplicationBase):
    NAME = "evidently-data-drift"

    def __init__(
        self,
        *args: Any,
        potential_share: float = 0.3,
        detected_share: float = 0.5,
        snapshots: str = "on_detection",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.thresholds = Thresholds(
            potential_share, detected_share, what="drifted columns share (potential_share, detected_share)"
        )
        if snapshots not in ("always", "on_detection", "never"):
            raise MonitoringError(f"snapshots must be always, on_detection or never, got {snapshots!r}")
        self.snapshots = snapshots

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> list:
        from evidently.presets import DataDriftPreset

        ctx = monitoring_context
        # PSI is histogram-based: linear in rows, unlike the default KS/Wasserstein choice.
        snapshot = self.run_report(ctx, [DataDriftPreset(num_method="psi", cat_method="psi")])
        values = self.metric_values(snapshot)
        drifted = next(v for k, v in values.items() if k.startswith("DriftedColumnsCount"))
        share = float(drifted["share"])
        status = self.thresholds.status(share)
        scores = {
            m.group(1): float(v) for k, v in values.items() if (m := _COLUMN.match(k)) and v is not None
        }
        report_uri = self.log_evidently_report(ctx, snapshot)
        snapshot_id = None
        if self.snapshots == "always" or (self.snapshots == "on_detection" and status > 0):
            snapshot_id = self.add_snapshot(ctx, snapshot)
        return [
            ModelMonitoringApplicationResult(
                name="drifted_columns_share",
                value=share,
                kind=ResultKindApp.data_drift,
                status=status,
                extra_data={
                    "drifted_columns": int(drifted["count"]),
                    "psi": scores,
                    "report": report_uri,
                    "snapshot_id": snapshot_id,
                },
            ),
            *[
                ModelMonitoringApplicationMetric(f"psi_{name}", value)
                for name, value in scores.items()
                if re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", f"psi_{name}")
            ],
        ]
