"""Headless Chromium for page tests (Debian's `chromium`, installed by .ci/run)."""

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def playwright_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A page of Debian's headless Chromium driven by Playwright (its own browsers are never
    downloaded: `executable_path` points at the system's)."""
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS[1:])
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
