"""JSON over HTTP(S) for the webhook and Slack channels. A POST is never redirected: a 3xx answer
is a failed attempt naming the Location (urllib would re-send it as a GET, without the body)."""

import base64
import urllib.error
import urllib.request
from typing import IO, Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from mm_dagster.alerts.secrets import redact
from mm_dagster.core.errors import AlertConfigError, DeliveryError


def http_url(url: object, where: str) -> str:
    """`url` if it is an http(s) URL with a host."""
    if isinstance(url, str):
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            return url
    raise AlertConfigError(f"{where}: URL {url!r} is not an http(s) URL")


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into an `HTTPError` carrying the 3xx answer."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


def without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """`url` without `user:password@`, and the Basic `Authorization` header it stood for (urllib
    would take the userinfo for part of the host name)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float, secrets: list[str]) -> None:
    """POST `body`; raises `DeliveryError` (with `secrets` and URL credentials redacted) unless the
    answer is 2xx. Any failure, down to a malformed answer, is a `DeliveryError`."""
    opener = urllib.request.build_opener(RefuseRedirects())
    try:
        target, auth = without_userinfo(url)
        secrets = [*secrets, *auth.values()]
        request = urllib.request.Request(
            target, data=body, method="POST", headers={"Content-Type": "application/json", **headers, **auth}
        )
        with opener.open(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                raise DeliveryError(f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        location = exc.headers.get("Location") if exc.headers else None
        where = f" to {location} (redirects are not followed)" if location else ""
        raise DeliveryError(redact(f"HTTP {exc.code} {exc.reason}{where}", secrets)) from None
    except DeliveryError:
        raise
    except Exception as exc:  # a bad answer of any kind is a failed attempt
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(redact(f"{type(exc).__name__}: {reason}", secrets)) from None
