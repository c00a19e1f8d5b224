"""Alerts through Dagster: the app step raises events and queues the failed-check notification,
the delivery sensor delivers; one notification per (check, window), none again on a re-run."""

from pathlib import Path

import pytest
from dagster import build_sensor_context, instance_for_test, materialize

from mm_dagster.alerts import WebhookChannel, data_drift_detected
from mm_dagster.alerts.service import AlertService
from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from mm_dagster.storage.alert_store import AlertStore

from .conftest import past_window
from .servers import http_sink


@pytest.mark.slow  # ~3 s: two Dagster runs and two sensor ticks
def test_check_failure_notifies_once_per_window_and_not_on_rerun(isolated_home: Path) -> None:
    home = str(isolated_home)
    mm = Monitoring(home=home)
    mm.create_endpoint("drifty", reference=reference_frame(4000, seed=2), label_names=["prediction"])
    window = past_window(60)
    mm.record_events(
        "drifty",
        traffic_frame(
            400, window.start, window.end, TrafficShape(mean_shift=3.0, drifted_features=4), seed=5
        ),
    )
    resource = MonitoringResource(home=home)
    with http_sink() as checks_hook, http_sink() as alerts_hook:
        config = MonitoringConfig(
            apps=[HistogramDataDriftApplication()],
            partitions_start="2026-11-01",
            check_notifications=[WebhookChannel(checks_hook.url)],
            alerts=[data_drift_detected([WebhookChannel(alerts_hook.url)])],
        )
        defs = build_definitions(config, resource=resource)
        delivery = defs.resolve_sensor_def("mm_alert_delivery")
        with instance_for_test() as instance:
            for _ in range(2):  # the second run is a re-run of the same window
                result = materialize(
                    list(defs.assets), partition_key=window.key, instance=instance, resources={"mm": resource}
                )
                assert result.success
                with build_sensor_context(instance=instance, resources={"mm": resource}) as context:
                    delivery.evaluate_tick(context)
        # one notification per failed check (each result name has its own), none for the re-run
        bodies = {body["check"]: body for body in checks_hook.bodies()}
        assert len(checks_hook.requests) == len(bodies) >= 1
        prefix = "mm/histogram-data-drift/histogram-data-drift_results:"
        body = bodies[prefix + "feature_drift_within_thresholds"]
        assert body["window"] == window.key and body["severity"] == "ERROR"
        assert len(alerts_hook.requests) == 1  # the drift alert too, once
        assert alerts_hook.bodies()[0]["alert"] == "data-drift-detected"
    alerts = AlertService(AlertStore(mm.engine), config.alerts, check_channels=config.check_notifications)
    assert {n.status for n in alerts.store.notifications()} == {"sent"}


def test_the_config_turns_on_resending_when_a_channel_is_healthy(isolated_home: Path) -> None:
    from mm_dagster.core.clock import utcnow
    from mm_dagster.dagster_defs.alert_sensors import alert_service_for

    with Monitoring(home=str(isolated_home)) as mm:
        for wanted in (False, True):
            config = MonitoringConfig(apps=[HistogramDataDriftApplication()], resend_when_healthy=wanted)
            assert alert_service_for(mm, config, utcnow).delivery.resend_when_healthy is wanted
