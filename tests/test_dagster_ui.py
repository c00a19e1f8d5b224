"""The Dagster UI as a user reads it: `dagster dev` on a small home with one drifted window,
driven in headless Chromium (Playwright). Screenshots land in the test's tmp_path
(`MM_UI_SCREENSHOTS=<dir>` keeps them elsewhere)."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from mm_dagster.core.clock import utcnow
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .browser import playwright_page
from .servers import free_port

pytestmark = pytest.mark.slow  # starts `dagster dev` and Chromium

ROOT = Path(__file__).parent.parent
RESULTS = "mm/histogram-data-drift/histogram-data-drift_results"
FAILED_CHECK = "feature_drift_within_thresholds"
LOCATION = """
from datetime import timedelta

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.clock import utcnow
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions

config = MonitoringConfig(
    apps=[HistogramDataDriftApplication()],
    partitions_start=Window.containing(utcnow() - timedelta(hours=3), 10).start,
    sensor_running_by_default=False,
)
defs = build_definitions(config)
"""


def analysed_home(home: Path) -> list[tuple[Window, str]]:
    """Two endpoints, two closed windows, the last one drifted on `drifty`, each analysed by
    the code location's job into the Dagster instance at `home / "dagster"` (window, run id)."""
    mm = Monitoring(home=str(home / "mm"))
    mm.create_endpoint("calm", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    mm.create_endpoint("drifty", reference=reference_frame(2000, seed=2), label_names=["prediction"])
    now = utcnow()
    windows = [Window.containing(now - timedelta(minutes=m), 10) for m in (40, 30)]
    for i, w in enumerate(windows):
        mm.record_events("calm", traffic_frame(300, w.start, w.end, seed=i))
        shape = TrafficShape(mean_shift=3.0, drifted_features=4) if i == 1 else TrafficShape()
        mm.record_events("drifty", traffic_frame(300, w.start, w.end, shape, seed=10 + i))
    namespace: dict[str, Any] = {}
    exec(compile(LOCATION, str(home / "location.py"), "exec"), namespace)
    job = namespace["defs"].resolve_job_def("mm_monitoring_job")
    runs = []
    with DagsterInstance.local_temp(str(home / "dagster")) as instance:
        for w in windows:
            result = job.execute_in_process(instance=instance, partition_key=w.key)
            assert result.success
            runs.append((w, result.run_id))
    return runs


@contextmanager
def dagster_dev(home: Path) -> Iterator[Callable[[], str]]:
    """Starts `dagster dev` on the home; yields a function that waits until it answers (its URL)."""
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home / "dagster"),
        "MM_HOME": str(home / "mm"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(home)]),
    }
    dagster = Path(sys.executable).parent / "dagster"
    # Every storage of the instance made and stamped here, once: `dagster dev`'s webserver,
    # daemon and code server otherwise race to create them in SQLite ("alembic_version has more
    # than one head").
    subprocess.run([str(dagster), "instance", "migrate"], cwd=home, env=env, check=True, capture_output=True)
    log = (home / "dagster_dev.log").open("wb")
    proc = subprocess.Popen(
        [str(dagster), "dev", "-f", "location.py", "-h", "127.0.0.1", "-p", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def wait_until_up() -> str:
        # `dagster dev` loads the code location in a process of its own before the webserver
        # answers: minutes on a loaded machine (the distributed tests run beside this one).
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (home / "dagster_dev.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                    return url
            except OSError as exc:
                if time.monotonic() > deadline:
                    log_tail = (home / "dagster_dev.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"dagster dev not answering on {url}: {exc}\n{log_tail}") from exc
                time.sleep(0.5)

    try:
        yield wait_until_up
    finally:
        # `dagster dev` and its webserver, daemon and code server share the session started here
        os.killpg(proc.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


def open_page(page: Any, url: str, wait_for: str) -> None:
    """Goes to `url`, waits for `wait_for` to show, and skips Dagster's first-visit dialog."""
    page.goto(url)
    page.get_by_text(wait_for).first.wait_for(timeout=30_000)
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()
    page.wait_for_timeout(1000)  # lazily loaded counts and charts


def skip_first_visit_dialog(page: Any) -> None:
    """Dagster greets a new browser profile with a community dialog: skip it once, if it comes
    (it may not on a slow first load; later pages skip it when they see it)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    skip = page.get_by_role("button", name="Skip")
    try:
        skip.first.wait_for(timeout=15_000)
    except PlaywrightTimeout:
        return
    skip.first.click()


def test_a_drifted_window_reads_as_failed_with_endpoint_and_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path
    monkeypatch.setenv("MM_HOME", str(home / "mm"))
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (home / "location.py").write_text(LOCATION)
    shots = Path(os.environ.get("MM_UI_SCREENSHOTS", str(tmp_path / "screenshots")))
    shots.mkdir(parents=True, exist_ok=True)
    with dagster_dev(home) as started:
        runs = analysed_home(home)  # while `dagster dev` starts
        drifted, drifted_run = runs[-1]
        url = started()
        with playwright_page(1600, 1100) as page:
            open_page(page, f"{url}/asset-groups", "histogram-data-drift_results")
            skip_first_visit_dialog(page)
            # the lineage labels the app's nodes with its name
            assert page.get_by_text("histogram-data-drift_metrics").first.is_visible()
            page.screenshot(path=str(shots / "lineage.png"))

            detail = f"{url}/assets/{RESULTS}?view=checks&checkDetail={FAILED_CHECK}"
            open_page(page, detail, "drifting: f")
            body = page.inner_text("body")
            assert FAILED_CHECK in body and "Failed" in body
            # the flagged endpoint, its result and its drifting features, in the page as shown
            summary = page.get_by_text("drifty: feature_drift detected")
            assert summary.first.is_visible()
            assert drifted.key in body
            table_row = page.locator("tr", has_text="feature_drift").filter(has_text="drifty").last
            assert table_row.is_visible() and "f0" in table_row.inner_text()
            assert page.get_by_text("[Show Markdown]").count() == 0
            page.screenshot(path=str(shots / "check.png"), full_page=True)

            page.locator("button[role=tab]", has_text="Partitions").click()
            page.get_by_text(drifted.key).first.click()
            page.get_by_text("drifty: feature_drift detected").first.wait_for(timeout=15_000)
            page.screenshot(path=str(shots / "check_partitions.png"))

            open_page(page, f"{url}/assets/{RESULTS}?view=partitions", "Partitions")
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots / "asset_partitions.png"))

            open_page(page, f"{url}/assets/{RESULTS}?view=events", drifted.key)
            page.screenshot(path=str(shots / "asset_events.png"), full_page=True)

            open_page(page, f"{url}/runs", "mm_monitoring_job")
            assert page.get_by_text(f"partition: {drifted.key}").first.is_visible()
            page.screenshot(path=str(shots / "runs.png"))

            open_page(page, f"{url}/runs/{drifted_run}", "mm_monitoring_job")
            page.get_by_text("drifty: feature_drift detected").first.wait_for(timeout=30_000)
            page.screenshot(path=str(shots / "run.png"))
            (shots / "run.txt").write_text(page.inner_text("body"))
