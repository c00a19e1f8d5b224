"""The code location `workspace.yaml` loads: the built-in apps and the gating example.

Adding an app is one line in `apps`; alerts and check notifications go to the log by default
(add a WebhookChannel, SlackChannel or EmailChannel to deliver elsewhere). `apps/gating.py` shows
monitoring results gating a promotion asset and requesting a retraining job. `apps/dummy_app.py`
(the app of MLRun's docs) is an example to copy, not part of this code location: it reports
`potential_detection` on every window by design.
"""

from dagster import Definitions

from apps import gating
from mm_dagster.alerts import AlertConfig, LogChannel, app_failed, data_drift_detected
from mm_dagster.applications import (
    DataQualityApplication,
    EstimatedPerformanceApplication,
    HistogramDataDriftApplication,
    MultivariateDriftApplication,
    OperationalApplication,
    PerformanceApplication,
)
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions

config = MonitoringConfig(
    project="demo",
    base_period=10,
    # Closed windows and late events are picked up within 30 s rather than within a window.
    controller_interval_seconds=30,
    apps=[
        HistogramDataDriftApplication(),
        DataQualityApplication(),
        MultivariateDriftApplication(),
        PerformanceApplication(),
        EstimatedPerformanceApplication(),
        OperationalApplication(potential_error_rate=0.02, detected_error_rate=0.1),
    ],
    alerts=[
        data_drift_detected([LogChannel()]),
        AlertConfig(
            name="serving-errors",
            summary="{{project}}: serving incident (errors, latency or no traffic) on {{entity}}",
            severity="high",
            trigger=["system-performance-detected"],
            notifications=[LogChannel()],
        ),
        app_failed([LogChannel()]),
    ],
    check_notifications=[LogChannel(level="INFO")],
)

defs = Definitions.merge(build_definitions(config), gating.gating_defs)
