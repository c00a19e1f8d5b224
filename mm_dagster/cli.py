"""`mm`: inspect endpoints, results and alerts; reset manual alerts; deliver notifications."""

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mm_dagster.core.errors import MonitoringError

if TYPE_CHECKING:
    from mm_dagster.alerts.service import AlertService


def _load_config(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr or "config")


def _alert_service(args: argparse.Namespace) -> "AlertService":
    from mm_dagster.alerts import load_alerts_yaml
    from mm_dagster.alerts.service import AlertService
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.storage.alert_store import AlertStore

    store = AlertStore(Monitoring().engine)
    if args.alerts_yaml:
        return AlertService(store, load_alerts_yaml(args.alerts_yaml))
    config = _load_config(args.config)
    return AlertService(
        store, config.alerts, check_channels=config.check_notifications, project=config.project
    )


def _print(rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        print(json.dumps(row, default=str, sort_keys=True))


def _print_redacted(rows: Sequence[dict[str, Any]]) -> None:
    """Alert rows as JSON lines, URLs without userinfo or query string (rows stored before
    delivery redacted them may still hold credentials)."""
    from mm_dagster.alerts.secrets import redact_urls

    for row in rows:
        print(redact_urls(json.dumps(row, default=str, sort_keys=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mm", description=__doc__)
    parser.add_argument(
        "--config",
        default=os.environ.get("MM_CONFIG", "apps.definitions:config"),
        help="module:attribute of the MonitoringConfig (default %(default)s)",
    )
    parser.add_argument("--alerts-yaml", help="read alert configs from this YAML file instead")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("endpoints", help="list model endpoints")
    results = sub.add_parser("results", help="latest result per endpoint, app, name and segment")
    results.add_argument("--endpoint")
    results.add_argument("--app")
    alerts = sub.add_parser("alerts", help="alerts: list, events, notifications, reset, deliver, resend")
    alerts_sub = alerts.add_subparsers(dest="action", required=True)
    alerts_sub.add_parser("list")
    events = alerts_sub.add_parser("events")
    events.add_argument("name", nargs="?")
    notes = alerts_sub.add_parser("notifications")
    notes.add_argument("name", nargs="?")
    notes.add_argument("--attempts", action="store_true", help="include every delivery attempt")
    reset = alerts_sub.add_parser("reset")
    reset.add_argument("name")
    reset.add_argument("--entity")
    alerts_sub.add_parser("deliver")
    resend = alerts_sub.add_parser("resend", help="re-queue failed notifications (attempts stay stored)")
    resend.add_argument("name", nargs="?", help="only this alert's")
    resend.add_argument("--id", type=int, help="only this notification")
    report = sub.add_parser(
        "report",
        help="write an endpoint's drift timeline page (HTML) of the last --hours to a file named "
        "after the endpoint and range; prints its path",
    )
    report.add_argument("endpoint")
    report.add_argument("--hours", type=float, default=24.0)
    report.add_argument("--app", default="histogram-data-drift")
    windows = sub.add_parser(
        "windows", help="recent windows with stored events, and whether each was analysed"
    )
    windows.add_argument("--hours", type=float, default=24.0)
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
    tokens = sub.add_parser("tokens", help="bearer tokens of the ingestion API: create, list, revoke")
    tokens_sub = tokens.add_subparsers(dest="action", required=True)
    create = tokens_sub.add_parser("create", help="create a token; its secret is printed once")
    create.add_argument("name")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--endpoint", help="the token may write to this endpoint only")
    scope.add_argument("--project", action="store_true", help="the token may write to every endpoint")
    tokens_sub.add_parser("list", help="id, name, scope, created, last used, revoked (no secrets)")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token by id or name")
    revoke.add_argument("token", metavar="ID_OR_NAME")
    maintain = sub.add_parser(
        "maintain", help="compact closed windows, delete events past retention, sweep leftovers"
    )
    maintain.add_argument(
        "--retention-days", type=float, help="keep this many days of events (default: the config's)"
    )
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except MonitoringError as exc:
        print(f"mm: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "endpoints":
        from mm_dagster.monitoring import Monitoring

        _print(
            [
                {
                    "id": e.id,
                    "name": e.name,
                    "model": e.model_name,
                    "events": e.event_count,
                    "errors": e.error_count,
                    "last_request": e.last_request,
                }
                for e in Monitoring().list_endpoints()
            ]
        )
        return 0
    if args.command == "results":
        from mm_dagster.core.segments import segment_label
        from mm_dagster.monitoring import Monitoring

        mm = Monitoring()
        endpoint = mm.get_endpoint(args.endpoint).id if args.endpoint else None
        _print(
            [
                {
                    "endpoint_id": r.endpoint_id,
                    "app": r.app,
                    "name": r.name,
                    "segment": segment_label(r.segment),
                    "window_start": r.window_start,
                    "status": r.status.name,
                    "value": r.value,
                }
                for r in mm.results.latest_results(endpoint, args.app, segment=None)
            ]
        )
        return 0
    if args.command == "report":
        from mm_dagster.monitoring import Monitoring

        print(Monitoring().write_endpoint_report(args.endpoint, hours=args.hours, app=args.app))
        return 0
    if args.command == "windows":
        from mm_dagster.core.windows import Window
        from mm_dagster.monitoring import Monitoring

        config = _load_config(args.config)
        with Monitoring(base_period=config.base_period) as mm:
            end = Window.containing(mm.clock(), config.base_period).end
            coverage = mm.window_coverage(end - timedelta(hours=args.hours), end, config.base_period)
        expected = {app.name for app in config.apps}
        for entry in coverage:
            missing = sorted(expected - set(entry.apps))
            state = "analysed" if not missing else f"NOT ANALYSED by {', '.join(missing)}"
            print(f"{entry.window.key}  {entry.events:>9} events  {state}")
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "tokens":
        return _tokens(args)
    if args.command == "maintain":
        from mm_dagster.events.maintenance import MaintenancePolicy
        from mm_dagster.monitoring import Monitoring

        config = _load_config(args.config)
        retention = timedelta(days=args.retention_days) if args.retention_days else config.retention
        policy = MaintenancePolicy(retention=retention, allowed_lateness=config.allowed_lateness)
        with Monitoring(base_period=config.base_period) as mm:
            for line in mm.maintain(policy).lines:
                print(line)
        return 0
    alerts = _alert_service(args)

    if args.action == "list":
        _print_redacted([asdict(summary) for summary in alerts.inspection.list_alerts()])
    elif args.action == "events":
        _print_redacted([asdict(event) for event in alerts.inspection.events(args.name)])
    elif args.action == "notifications":
        rows = []
        for note in alerts.store.notifications(args.name):
            row = asdict(note)
            if args.attempts:
                row["attempts_detail"] = [asdict(a) for a in alerts.store.attempts(note.id)]
            rows.append(row)
        _print_redacted(rows)
    elif args.action == "reset":
        print(
            f"reset {alerts.inspection.reset(args.name, args.entity)} active entity state(s) of {args.name}"
        )
    elif args.action == "deliver":
        report = alerts.deliver_due()
        for line in report.lines:
            print(line)  # errors and labels are stored redacted
        print(f"sent {report.sent}, retrying {report.retrying}, gave up {report.failed}")
    elif args.action == "resend":
        print(f"re-queued {alerts.resend(args.name, args.id)} failed notification(s)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mm_dagster.service import ServiceSettings, create_app
    from mm_dagster.service.factory import worker_environment

    if args.workers < 1:
        raise MonitoringError(f"--workers must be at least 1, got {args.workers}")
    config = _load_config(args.config)
    if args.workers == 1:
        app = create_app(ServiceSettings.from_config(config))
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
        return 0
    # Worker processes make the app themselves, from the environment (`service.factory`).
    os.environ.update(worker_environment(args.config))
    uvicorn.run(
        "mm_dagster.service.factory:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return 0


def _tokens(args: argparse.Namespace) -> int:
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.storage.api_tokens import PROJECT_SCOPE, ApiTokenStore, endpoint_scope

    with Monitoring() as mm:
        store = ApiTokenStore(mm.engine)
        if args.action == "create":
            scope = PROJECT_SCOPE if args.project else endpoint_scope(mm.get_endpoint(args.endpoint).name)
            created = store.create(args.name, scope)
            print(f"created token {created.token.id} {created.token.name!r} ({created.token.scope})")
            print("secret (shown once, store it now):")
            print(created.secret)
        elif args.action == "list":
            _print([asdict(token) for token in store.list()])
        elif args.action == "revoke":
            token = store.revoke(args.token)
            print(f"revoked token {token.id} {token.name!r} ({token.scope}) at {token.revoked_at}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
