"""Secrets are named by environment variable (or a Dagster `EnvVar`) and read only when needed;
no error message carries one, and no URL is shown with its userinfo or query string."""

import os
import re
from urllib.parse import urlsplit, urlunsplit

from mm_dagster.core.errors import AlertConfigError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
HIDDEN = "***"


def env_name(value: object, where: str) -> str:
    """The environment variable a secret is read from (a name, or a Dagster EnvVar)."""
    name = getattr(value, "env_var_name", None) or value
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise AlertConfigError(f"{where}: {value!r} is not an environment variable name")
    return name


def read_secret(name: str, where: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise AlertConfigError(f"{where}: secret environment variable {name} is not set")
    return value


def redact_url(url: str) -> str:
    """`url` with its userinfo and query string (and fragment) replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{HIDDEN}@{host}" if "@" in parts.netloc else host
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path,
            HIDDEN if parts.query else "",
            HIDDEN if parts.fragment else "",
        )
    )


def redact_urls(text: str) -> str:
    """`text` with every URL in it redacted as `redact_url` does."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact(text: str, secrets: list[str]) -> str:
    """`text` without `secrets` and with its URLs redacted."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    return redact_urls(text)
