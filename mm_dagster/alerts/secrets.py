"""Secrets are named by environment variable (or a Dagster `EnvVar`) and read only when needed;
no error message carries one."""

import os
import re

from mm_dagster.core.errors import AlertConfigError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
