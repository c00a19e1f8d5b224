"""`mm serve` on loopback in a subprocess, for tests that talk to it over real HTTP."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def running_service(
    home: Path, env: Mapping[str, str] | None = None, config: str = "apps.definitions:config"
) -> Iterator[str]:
    """Start `mm serve` on a free loopback port over the deployment at `home`; yields its base
    URL and stops it afterwards. Its log is kept in `home/service.log`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {**os.environ, "MM_HOME": str(home), "MM_UI_URL": base, "PYTHONPATH": str(ROOT), **(env or {})}
    log = (home / "service.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mm_dagster.cli", "--config", config, "serve", "--port", str(port)],
        env=environ,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"{base}/healthz", process, f"mm serve (see {home / 'service.log'})")
        yield base
    finally:
        stop(process)
        log.close()


def wait_for_http(url: str, process: subprocess.Popen[bytes], what: str, seconds: float = 60) -> None:
    """Until `url` answers 200; raises if `process` exits first or the time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {seconds:g} s")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
