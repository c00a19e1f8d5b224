"""The monitoring home a command works on: `--home`, else `MM_HOME`, else `./.mm_home`. Only
`mm init` creates one; every other command refuses a home that does not exist."""

import os
from pathlib import Path

from mm_dagster.cli.errors import UsageError


def resolve_home(option: str | None) -> tuple[Path, str]:
    """The home's absolute path and where it came from (for messages)."""
    from mm_dagster.monitoring import DEFAULT_HOME  # imported when used: `mm --help` stays quick

    if option:
        return Path(option).absolute(), "--home"
    if os.environ.get("MM_HOME"):
        return Path(os.environ["MM_HOME"]).absolute(), "MM_HOME"
    return Path(DEFAULT_HOME).absolute(), f"the default ./{DEFAULT_HOME}"


def existing_home(option: str | None) -> str:
    """The home's path; a UsageError saying how to make one when it does not exist."""
    home, source = resolve_home(option)
    if home.is_dir():
        return str(home)
    if home.exists():
        raise UsageError(f"the monitoring home {home} (from {source}) is not a directory")
    raise UsageError(
        f"no monitoring home at {home} (from {source}): create it with `mm init --home {home}`, "
        "or point --home or MM_HOME at an existing one"
    )
