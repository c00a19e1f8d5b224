"""The `mm` argument parser."""

import argparse
import os
import sys
from typing import NoReturn

from mm_dagster.cli.times import positive_hours

DESCRIPTION = """Inspect and operate a monitoring deployment. Listings print aligned tables with
endpoint names and UTC times (YYYY-MM-DD HH:MM); add --json for one JSON object per line (ISO 8601
times), for scripts. Mistakes print one line `mm: ...` and exit with 2."""


DEFAULT_REPORT_APP = "histogram-data-drift"


class Parser(argparse.ArgumentParser):
    """Usage mistakes as one line, `mm: <what was wrong>`, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"mm: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line, for scripts")


def build_parser() -> Parser:
    parser = Parser(prog="mm", description=DESCRIPTION)
    parser.add_argument(
        "--home",
        help="the monitoring home (overrides MM_HOME; default ./.mm_home); it must exist: "
        "create it with `mm init`",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("MM_CONFIG", "apps.definitions:config"),
        help="module:attribute of the MonitoringConfig (default %(default)s)",
    )
    parser.add_argument("--alerts-yaml", help="read alert configs from this YAML file instead")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    init = sub.add_parser("init", help="create the monitoring home and its database schema")
    init.add_argument(
        "--home", default=argparse.SUPPRESS, help="where (default: --home, MM_HOME or ./.mm_home)"
    )
    _json_flag(sub.add_parser("endpoints", help="list model endpoints"))
    for kind in ("results", "metrics"):
        listing = sub.add_parser(
            kind,
            help=f"the latest {kind[:-1]} per endpoint, app, name and segment, or every window's in a range",
        )
        _filters(listing)
        _json_flag(listing)
    _alerts(sub.add_parser("alerts", help="alerts: list, events, notifications, reset, deliver, resend"))
    report = sub.add_parser(
        "report",
        help="write an endpoint's drift timeline page (HTML) of the last --hours to a file named "
        "after the endpoint and range; prints its path",
    )
    report.add_argument("endpoint")
    report.add_argument("--hours", type=positive_hours, default=24.0)
    report.add_argument(
        "--app",
        help=f"the app whose results to plot (default {DEFAULT_REPORT_APP}); it must have stored results",
    )
    windows = sub.add_parser(
        "windows", help="recent windows with stored events, and whether each was analysed"
    )
    windows.add_argument("--hours", type=positive_hours, default=24.0)
    _json_flag(windows)
    serve = sub.add_parser(
        "serve", help="run the monitoring service: dashboard, ingestion, results API, /metrics"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes sharing the port; each opens its own stores and allows "
        "MM_MAX_CONCURRENT_WRITES writes of its own (default %(default)s)",
    )
    _tokens(sub.add_parser("tokens", help="bearer tokens of the ingestion API: create, list, revoke"))
    maintain = sub.add_parser(
        "maintain", help="compact closed windows, delete events past retention, sweep leftovers"
    )
    maintain.add_argument(
        "--retention-days", type=float, help="keep this many days of events (default: the config's)"
    )
    return parser


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help="only this endpoint (name or id)")
    parser.add_argument("--app", help="only this app")
    parser.add_argument("--name", help="only this result or metric name")
    parser.add_argument(
        "--segment", help="only this segment, as shown (e.g. country=DE); '' for endpoint-wide only"
    )
    parser.add_argument(
        "--since",
        help="list every window starting at or after this time: ISO (UTC unless an offset is "
        "given) or a span before now (30m, 6h, 2d, 1w); without --since/--until, the latest per series",
    )
    parser.add_argument("--until", help="... and before this time (default now); same forms as --since")


def _alerts(alerts: argparse.ArgumentParser) -> None:
    actions = alerts.add_subparsers(dest="action", required=True, parser_class=Parser)
    _json_flag(actions.add_parser("list", help="configured alerts, their state and active entities"))
    events = actions.add_parser("events", help="the newest alert events (of one alert's)")
    events.add_argument("name", nargs="?")
    _json_flag(events)
    notes = actions.add_parser("notifications", help="queued, sent and failed notifications")
    notes.add_argument("name", nargs="?")
    notes.add_argument("--attempts", action="store_true", help="include every delivery attempt")
    _json_flag(notes)
    reset = actions.add_parser("reset", help="reset a manual alert (all its entities, or --entity)")
    reset.add_argument("name")
    reset.add_argument("--entity", help="one entity, as `mm alerts list` shows it")
    actions.add_parser("deliver", help="send due notifications")
    resend = actions.add_parser("resend", help="re-queue failed notifications (attempts stay stored)")
    resend.add_argument("name", nargs="?", help="only this alert's")
    resend.add_argument("--id", type=int, help="only this notification")


def _tokens(tokens: argparse.ArgumentParser) -> None:
    actions = tokens.add_subparsers(dest="action", required=True, parser_class=Parser)
    create = actions.add_parser("create", help="create a token; its secret is printed once")
    create.add_argument("name")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--endpoint", help="the token may write to this endpoint only")
    scope.add_argument("--project", action="store_true", help="the token may write to every endpoint")
    _json_flag(actions.add_parser("list", help="id, name, scope, created, last used, revoked (no secrets)"))
    revoke = actions.add_parser("revoke", help="revoke a token by id or name")
    revoke.add_argument("token", metavar="ID_OR_NAME")
