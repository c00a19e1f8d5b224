"""Addresses of the monitoring service's pages (`mm serve`), built from its base URL (`MM_UI_URL`).

Dagster metadata, alert messages and results link here, so one click from a failed check opens
the picture. Paths:

| page | path |
| --- | --- |
| endpoints overview | `/` |
| endpoint page | `/endpoints/{endpoint}` |
| window page | `/endpoints/{endpoint}/windows/{window key}?app={app}[&segment={key}]` |
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import PARTITION_KEY_FORMAT

DEFAULT_UI_URL = "http://127.0.0.1:8080"


def check_base_url(url: str) -> str:
    """An absolute http(s) URL without query or fragment; returned without a trailing '/'."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise MonitoringError(
            f"MM_UI_URL {url!r} must be an absolute http(s) URL such as {DEFAULT_UI_URL} "
            "(no query string or fragment)"
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class UiLinks:
    base_url: str = DEFAULT_UI_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "UiLinks":
        env = os.environ if environ is None else environ
        return cls(env.get("MM_UI_URL") or DEFAULT_UI_URL)

    def overview(self) -> str:
        return f"{self.base_url}/"

    def endpoint(self, endpoint_name: str) -> str:
        return f"{self.base_url}{endpoint_path(endpoint_name)}"

    def window(self, endpoint_name: str, window_start: datetime, app: str, segment: str = "") -> str:
        return f"{self.base_url}{window_path(endpoint_name, window_start, app, segment)}"

    def windows_of(self, app: str) -> Callable[[str, datetime, str], str]:
        """`window` of `app` for many endpoints (a batch of one window): the part after the
        endpoint's made once per (window, segment)."""
        suffixes: dict[tuple[datetime, str], str] = {}

        def page(endpoint_name: str, window_start: datetime, segment: str = "") -> str:
            suffix = suffixes.get((window_start, segment))
            if suffix is None:
                suffix = suffixes[window_start, segment] = window_suffix(window_start, app, segment)
            return f"{self.base_url}{endpoint_path(endpoint_name)}{suffix}"

        return page


def endpoint_path(endpoint_name: str) -> str:
    return f"/endpoints/{quote(endpoint_name, safe='')}"


def window_path(endpoint_name: str, window_start: datetime, app: str, segment: str = "") -> str:
    return f"{endpoint_path(endpoint_name)}{window_suffix(window_start, app, segment)}"


def window_suffix(window_start: datetime, app: str, segment: str = "") -> str:
    """A window page's path after its endpoint's: `/windows/{window key}?app=...`."""
    query = {"app": app, **({"segment": segment} if segment else {})}
    key = quote(window_start.strftime(PARTITION_KEY_FORMAT), safe="")
    return f"/windows/{key}?{urlencode(query)}"
