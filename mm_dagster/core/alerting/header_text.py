"""Text that ends up in a mail or HTTP header: no CR/LF (header injection, or a ValueError deep in
the sender), and for HTTP header values only latin-1 (what `http.client` can encode)."""

import re

from mm_dagster.core.errors import AlertConfigError

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


def single_line(value: str, where: str) -> str:
    """`value` unless it holds a CR or LF (or another line break)."""
    if any(c in value for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        raise AlertConfigError(f"{where}: {value!r} must be one line (no CR/LF)")
    return value


def http_header(name: object, value: object, where: str) -> tuple[str, str]:
    """A header (name, value) `http.client` sends as given: a token name, a one-line latin-1 value."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise AlertConfigError(f"{where}: header name {name!r} is not a valid HTTP header name")
    if not isinstance(value, str):
        raise AlertConfigError(f"{where}: header {name!r} value must be text, got {type(value).__name__}")
    single_line(value, f"{where}: header {name!r} value")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise AlertConfigError(
            f"{where}: header {name!r} value {value!r} is not latin-1 (HTTP headers cannot carry it)"
        ) from None
    return name, value
