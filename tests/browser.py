"""Headless Chromium for page tests (Debian's `chromium`, installed by .ci/run)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    return path


def _address(page: Path | str) -> str:
    """A file's URI, or an http(s) URL as given."""
    return page if isinstance(page, str) else page.resolve().as_uri()


def rendered_dom(page: Path | str) -> str:
    """The DOM after the page's scripts ran (plotly draws its SVG charts then)."""
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                _address(page),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return out.stdout


def screenshot(page: Path | str, png: Path, size: str = "1400,1800") -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                f"--window-size={size}",
                f"--screenshot={png}",
                _address(page),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
