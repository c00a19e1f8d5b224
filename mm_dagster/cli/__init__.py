"""`mm`: the command line of a monitoring deployment, for people (aligned tables, endpoint names,
UTC times) and for scripts (`--json`: one JSON object per line)."""

from mm_dagster.cli.entry import main

__all__ = ["main"]
