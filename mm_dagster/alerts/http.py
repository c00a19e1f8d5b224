"""JSON over HTTP(S) for the webhook and Slack channels."""

import urllib.error
import urllib.request
from urllib.parse import urlparse

from mm_dagster.alerts.secrets import redact
from mm_dagster.core.errors import AlertConfigError, DeliveryError


def http_url(url: object, where: str) -> str:
    """`url` if it is an http(s) URL with a host."""
    if isinstance(url, str):
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            return url
    raise AlertConfigError(f"{where}: URL {url!r} is not an http(s) URL")


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float, secrets: list[str]) -> None:
    """POST `body`; raises `DeliveryError` (with `secrets` redacted) unless the answer is 2xx."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                raise DeliveryError(f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(redact(f"{type(exc).__name__}: {reason}", secrets)) from None
