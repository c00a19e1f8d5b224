"""`mm`'s entry point: parse, check the home, run the command; user mistakes as one line
`mm: ...` with exit code 2, and quiet when the reader of stdout goes away (`mm results | head`)."""

import argparse
import os
import sys
from collections.abc import Sequence

from mm_dagster.cli.home import existing_home, resolve_home
from mm_dagster.cli.parser import build_parser
from mm_dagster.core.errors import MonitoringError

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a process killed by a closed pipe
EXIT_INTERRUPTED = 130  # 128 + SIGINT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except MonitoringError as exc:
        print(f"mm: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured in tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(args: argparse.Namespace) -> int:
    from mm_dagster.cli import admin

    if args.command == "init":
        return admin.init_home(resolve_home(args.home)[0])
    home = existing_home(args.home)
    if args.command in ("results", "metrics"):
        from mm_dagster.cli.series import list_series

        return list_series(args, home, "result" if args.command == "results" else "metric")
    if args.command == "alerts":
        from mm_dagster.cli.alerts import run_alerts

        return run_alerts(args, home)
    commands = {
        "endpoints": admin.list_endpoints,
        "windows": admin.list_windows,
        "report": admin.write_report,
        "maintain": admin.maintain,
        "serve": admin.serve,
        "tokens": admin.tokens,
    }
    return commands[args.command](args, home)
