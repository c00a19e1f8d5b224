"""The code location as a user opens it: `dagster-webserver -w workspace.yaml`, queried over HTTP."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .servers import free_port

pytestmark = pytest.mark.slow  # starts dagster-webserver in a subprocess

ROOT = Path(__file__).parent.parent
QUERY = (
    "{ assetNodes { assetKey { path } } "
    "repositoriesOrError { ... on RepositoryConnection { nodes { name sensors { name } } } } }"
)


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_workspace_loads_in_the_dagster_webserver(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "MM_HOME": str(tmp_path / "mm")}
    webserver = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline:
            try:
                data = graphql(port, QUERY)["data"]
                if data["assetNodes"]:
                    break
            except (OSError, KeyError, TypeError):
                pass
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            time.sleep(1)
        assert data is not None, "webserver did not answer"
        keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
        assert "mm/window_events" in keys and "mm/histogram-data-drift/histogram-data-drift_results" in keys
        sensors = {s["name"] for repo in data["repositoriesOrError"]["nodes"] for s in repo["sensors"]}
        assert {"mm_controller", "mm_alert_delivery"} <= sensors
    finally:
        proc.terminate()
        proc.wait(timeout=30)
