"""An app's `monitoring_context.logger` lines reach the Dagster run's logs (with app, endpoint
and window), and the controller's runs carry Dagster's run timeout tag."""

import logging
from datetime import timedelta
from pathlib import Path

from dagster import build_sensor_context, instance_for_test

from mm_dagster.applications import ModelMonitoringApplicationBase, MonitoringApplicationContext
from mm_dagster.core.clock import fixed_clock
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame

from .conftest import NOW, materialize_window, past_window


class Chatty(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        monitoring_context.logger.info("hello from the app", rows=len(monitoring_context.sample_df))
        monitoring_context.logger.debug("too fine to show")
        return {"rows": float(len(monitoring_context.sample_df))}


def test_the_app_logger_writes_to_the_dagster_run_log(isolated_home: Path) -> None:
    home = str(isolated_home)
    window = past_window(60)
    mm = Monitoring(home=home, clock=fixed_clock(NOW))
    mm.create_endpoint("calm", reference=reference_frame(1000, seed=1))
    mm.record_events("calm", traffic_frame(40, window.start, window.end, seed=2))
    config = MonitoringConfig(apps=[Chatty()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=home))
    app_logger = logging.getLogger("mm_dagster.apps.chatty")
    with instance_for_test() as instance:
        result = materialize_window(defs, window.key, instance, home)
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    (line,) = [m for m in messages if "hello from the app" in m]
    assert "app='chatty'" in line and "endpoint='calm'" in line and f"window='{window.key}'" in line
    assert "rows=40" in line
    assert not any("too fine to show" in m for m in messages)
    assert app_logger.handlers == [] and app_logger.level == logging.NOTSET  # detached after the step


def test_plain_python_use_logs_to_the_stdlib_logger(isolated_home: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    window = past_window(60)
    with Monitoring(home=str(isolated_home), clock=fixed_clock(NOW)) as mm:
        mm.create_endpoint("calm", reference=reference_frame(1000, seed=1))
        mm.record_events("calm", traffic_frame(40, window.start, window.end, seed=2))
        with caplog.at_level(logging.INFO, logger="mm_dagster.apps.chatty"):
            mm.run_window([Chatty()], window)
    assert "hello from the app [app='chatty' endpoint='calm'" in caplog.text


def test_controller_runs_carry_dagsters_run_timeout_tag(isolated_home: Path) -> None:
    home = str(isolated_home)
    window = past_window(45)
    mm = Monitoring(home=home, clock=fixed_clock(NOW))
    mm.create_endpoint("calm", reference=reference_frame(1000, seed=1))
    mm.record_events("calm", traffic_frame(40, window.start, window.end, seed=2))
    config = MonitoringConfig(apps=[Chatty()], partitions_start="2026-11-01", max_run_seconds=1800)
    defs = build_definitions(
        config, resource=MonitoringResource(home=home), clock=fixed_clock(NOW + timedelta(seconds=30))
    )
    with (
        instance_for_test() as instance,
        build_sensor_context(
            instance=instance, definitions=defs, resources={"mm": MonitoringResource(home=home)}
        ) as context,
    ):
        result = defs.resolve_sensor_def("mm_controller").evaluate_tick(context)
    assert result.run_requests
    assert all(r.tags["dagster/max_runtime"] == "1800" for r in result.run_requests)
