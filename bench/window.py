"""One window of 1,000 endpoints x 1,000 events (20 features), all apps of the demo configuration.

Times the window through Dagster's in-process execution and through the core's window runner
alone (the same work), prints the Dagster overhead, then times the controller tick with 1,000
endpoints and 30 days of arrival history.
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from common import populate_window  # noqa: E402

ENDPOINTS = 1000
EVENTS = 1000
FEATURES = 20


def main() -> None:
    from dagster import build_sensor_context, instance_for_test

    from apps.definitions import config
    from mm_dagster.core.windows import Window, closed_before
    from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
    from mm_dagster.dagster_defs.resources import MonitoringResource
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.storage import database as db

    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        now = datetime.now(UTC)
        window = Window.containing(now - timedelta(hours=1), 10)
        setup = time.perf_counter()
        populate_window(mm, window, ENDPOINTS, EVENTS, FEATURES)
        print(
            f"setup: {ENDPOINTS} endpoints x {EVENTS} events x {FEATURES} features "
            f"in {time.perf_counter() - setup:.0f} s"
        )

        apps = list(config.apps)
        bench_config = MonitoringConfig(apps=apps, partitions_start="2026-11-01")
        resource = MonitoringResource(home=home)
        defs = build_definitions(bench_config, resource=resource, clock=lambda: now)
        job = defs.resolve_job_def("mm_monitoring_job")
        quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

        def core() -> float:
            t0 = time.perf_counter()
            mm.run_window(apps, window)
            return time.perf_counter() - t0

        with instance_for_test() as instance:

            def through_dagster() -> float:
                t0 = time.perf_counter()
                result = job.execute_in_process(instance=instance, partition_key=window.key, run_config=quiet)
                assert result.success
                return time.perf_counter() - t0

            core()  # warm-up: imports, null-threshold simulations, page cache
            core_runs, dagster_runs = [], []
            for _ in range(2):  # alternate, so machine noise hits both alike
                core_runs.append(core())
                dagster_runs.append(through_dagster())
            core_s, dagster_s = min(core_runs), min(dagster_runs)
            stored = len(mm.results.results(start=window.start, end=window.end))
            print(f"\n{'path':<40}{'seconds (best of 2)':>20}")
            print(f"{'core window runner (baseline)':<40}{core_s:>20.2f}")
            print(f"{'Dagster in-process run':<40}{dagster_s:>20.2f}   ({stored} results stored)")
            overhead = (dagster_s - core_s) / dagster_s
            print(f"Dagster overhead: {overhead:.1%} of the run (target < 10%)")
            print(f"whole window under 60 s: {dagster_s < 60}")

            # 30 days of arrival history for 1,000 endpoints: one file per endpoint and window.
            history = time.perf_counter()
            end = closed_before(now, timedelta(minutes=1), 10)
            slots = [end - timedelta(minutes=10 * i) for i in range(1, 30 * 144 + 1)]
            ids = [e.id for e in mm.list_endpoints()]
            written = db.to_db_time(now)
            rows_total = 0
            insert = (
                "INSERT INTO mm_event_arrivals (slot_start, endpoint_id, events, errors, first_event, "
                "last_event, written_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )
            with mm.engine.begin() as conn:
                for slot in slots:
                    s = db.to_db_time(slot)
                    rows = [(s, i, 1000, 0, s, s + timedelta(minutes=9), written) for i in ids]
                    conn.exec_driver_sql(insert, rows)
                    rows_total += len(rows)
            print(f"\narrival history: {rows_total:,} rows in {time.perf_counter() - history:.0f} s")
            sensor = defs.resolve_sensor_def("mm_controller")

            def tick(cursor: str | None) -> tuple[float, object]:
                with build_sensor_context(
                    instance=instance, cursor=cursor, definitions=defs, resources={"mm": resource}
                ) as context:
                    t0 = time.perf_counter()
                    out = sensor.evaluate_tick(context)
                    return time.perf_counter() - t0, out

            first_s, first = tick(None)
            steady_s, _ = tick(first.cursor)  # type: ignore[attr-defined]
            print(
                f"controller tick, first (requests {len(first.run_requests)} windows): {first_s:.3f} s"  # type: ignore[attr-defined]
                f"; steady state: {steady_s:.3f} s (target < 1 s)"
            )


if __name__ == "__main__":
    main()
