"""The deployment's commands: init, endpoints, windows, report, maintain, serve, tokens."""

import argparse
import os
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from mm_dagster.cli.config import load_config
from mm_dagster.cli.errors import UsageError
from mm_dagster.cli.output import Column, print_rows
from mm_dagster.cli.parser import DEFAULT_REPORT_APP
from mm_dagster.monitoring import Monitoring

ENDPOINT_COLUMNS = (
    Column("name", "endpoint"),
    Column("model", "model"),
    Column("version", "version"),
    Column("events", "events"),
    Column("errors", "errors"),
    Column("last_request", "last request (UTC)"),
)
WINDOW_COLUMNS = (
    Column("window_start", "window (UTC)"),
    Column("events", "events"),
    Column("state", "analysis"),
)
TOKEN_COLUMNS = (
    Column("id", "id"),
    Column("name", "token"),
    Column("scope", "scope"),
    Column("created_at", "created (UTC)"),
    Column("last_used_at", "last used (UTC)"),
    Column("revoked_at", "revoked (UTC)"),
)


def init_home(home: Path) -> int:
    """Create the home folder and the database schema (idempotent)."""
    existed = home.is_dir()
    if home.exists() and not existed:
        raise UsageError(f"cannot create the monitoring home at {home}: a file is in the way")
    home.mkdir(parents=True, exist_ok=True)
    with Monitoring(home=str(home)) as mm:
        database = mm.engine.url.render_as_string(hide_password=True)
    print(
        f"{'monitoring home ready' if existed else 'created monitoring home'} at {home} (database {database})"
    )
    print(f"use it with `--home {home}` or `export MM_HOME={home}`")
    return 0


def list_endpoints(args: argparse.Namespace, home: str) -> int:
    with Monitoring(home=home) as mm:
        endpoints = mm.list_endpoints()
    rows = [
        {
            "id": e.id,
            "name": e.name,
            "model": e.model_name,
            "version": e.model_version,
            "events": e.event_count,
            "errors": e.error_count,
            "last_request": e.last_request,
        }
        for e in sorted(endpoints, key=lambda e: e.name)
    ]
    print_rows(rows, ENDPOINT_COLUMNS, args.json, "endpoints")
    return 0


def list_windows(args: argparse.Namespace, home: str) -> int:
    from mm_dagster.core.windows import Window

    config = load_config(args.config)
    with Monitoring(home=home, base_period=config.base_period) as mm:
        end = Window.containing(mm.clock(), config.base_period).end
        coverage = mm.window_coverage(end - timedelta(hours=args.hours), end, config.base_period)
    expected = {app.name for app in config.apps}
    rows = []
    for entry in coverage:
        missing = sorted(expected - set(entry.apps))
        rows.append(
            {
                "window": entry.window.key,
                "window_start": entry.window.start,
                "events": entry.events,
                "apps": entry.apps,
                "missing_apps": missing,
                "state": "analysed" if not missing else f"NOT ANALYSED by {', '.join(missing)}",
            }
        )
    print_rows(rows, WINDOW_COLUMNS, args.json, f"windows with events in the last {args.hours:g} hours")
    return 0


def write_report(args: argparse.Namespace, home: str) -> int:
    """The default app is not checked: a report of an endpoint not analysed yet still shows its
    traffic; an app given by name must have stored results (in any endpoint)."""
    from mm_dagster.storage.series_names import stored_series

    with Monitoring(home=home) as mm:
        endpoint = mm.get_endpoint(args.endpoint)
        if args.app is not None:
            apps = sorted({app for app, _, _ in stored_series(mm.engine, "result")})
            if args.app not in apps:
                known = ", ".join(apps) or "none"
                raise UsageError(
                    f"--app {args.app!r}: no results stored from that app (apps with results: {known})"
                )
        print(mm.write_endpoint_report(endpoint.name, hours=args.hours, app=args.app or DEFAULT_REPORT_APP))
    return 0


def maintain(args: argparse.Namespace, home: str) -> int:
    from mm_dagster.events.maintenance import MaintenancePolicy

    config = load_config(args.config)
    if args.retention_days is not None and not args.retention_days > 0:
        raise UsageError(f"--retention-days must be above 0, got {args.retention_days:g}")
    retention = timedelta(days=args.retention_days) if args.retention_days else config.retention
    policy = MaintenancePolicy(retention=retention, allowed_lateness=config.allowed_lateness)
    with Monitoring(home=home, base_period=config.base_period) as mm:
        for line in mm.maintain(policy).lines:
            print(line)
    return 0


def serve(args: argparse.Namespace, home: str) -> int:
    import uvicorn

    from mm_dagster.service import ServiceSettings, create_app
    from mm_dagster.service.factory import worker_environment

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    config = load_config(args.config)
    os.environ["MM_HOME"] = home  # the service (and its worker processes) read the home from it
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


def tokens(args: argparse.Namespace, home: str) -> int:
    from mm_dagster.storage.api_tokens import PROJECT_SCOPE, ApiTokenStore, endpoint_scope

    with Monitoring(home=home) as mm:
        store = ApiTokenStore(mm.engine)
        if args.action == "create":
            scope = PROJECT_SCOPE if args.project else endpoint_scope(mm.get_endpoint(args.endpoint).name)
            created = store.create(args.name, scope)
            print(f"created token {created.token.id} {created.token.name!r} ({created.token.scope})")
            print("secret (shown once, store it now):")
            print(created.secret)
        elif args.action == "list":
            print_rows([asdict(token) for token in store.list()], TOKEN_COLUMNS, args.json, "tokens")
        elif args.action == "revoke":
            token = store.revoke(args.token)
            print(f"revoked token {token.id} {token.name!r} ({token.scope}) at {token.revoked_at}")
    return 0
