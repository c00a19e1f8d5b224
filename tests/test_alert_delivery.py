"""Alert events, grouping, the outbox and every channel, against real loopback servers."""

import json
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mm_dagster.alerts import (
    AlertConfig,
    EmailChannel,
    EntityFilter,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    app_failed,
    data_drift_detected,
)
from mm_dagster.alerts.channels import SIGNATURE_HEADER, signature
from mm_dagster.alerts.service import AlertService
from mm_dagster.core.outputs import ModelMonitoringApplicationResult
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage import database as db
from mm_dagster.storage.alert_store import AlertStore

from .servers import free_port, http_sink, self_signed_cert, smtp_server

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def window(i: int = 0) -> Window:
    return Window(T0 + timedelta(minutes=10 * i), T0 + timedelta(minutes=10 * (i + 1)))


def report(
    w: Window,
    statuses: dict[str, ResultStatusApp],
    failures: dict[str, str] | None = None,
    app: str = "drift",
) -> AppWindowReport:
    names = {e: f"name-{e[:4]}" for e in [*statuses, *(failures or {})]}
    r = AppWindowReport(app=app, window=w, endpoint_names=names)

    for endpoint_id, status in statuses.items():
        result = ModelMonitoringApplicationResult("general_drift", 0.8, ResultKindApp.data_drift, status)
        r.outputs[endpoint_id] = ([result], [])
    r.failures = failures or {}
    return r


EP = "a" * 32
EP2 = "b" * 32
DETECTED = ResultStatusApp.detected
CLEAN = ResultStatusApp.no_detection


@pytest.fixture
def clock() -> Clock:
    return Clock()


def manager(mm: Monitoring, clock: Clock, *alerts: AlertConfig, **kwargs: object) -> AlertService:
    return AlertService(AlertStore(mm.engine), alerts, clock=clock, project="shop", **kwargs)  # type: ignore[arg-type]


def test_events_are_stored_once_and_rerun_never_renotifies(mm: Monitoring, clock: Clock) -> None:
    m = manager(mm, clock, data_drift_detected([LogChannel()], cooldown=0))
    assert m.record_report(report(window(), {EP: DETECTED})) == 1
    assert len(m.store.notifications()) == 1
    clock.advance(hours=2)
    assert m.record_report(report(window(), {EP: DETECTED})) == 0  # a re-run of the same window
    assert len(m.store.notifications()) == 1
    (event,) = m.inspection.events()
    assert event.kind == "data-drift-detected" and event.entity == f"{EP}.drift.result.general_drift"


def test_app_failures_raise_mm_app_failed(mm: Monitoring, clock: Clock) -> None:
    m = manager(mm, clock, app_failed([LogChannel()]))
    m.record_report(report(window(), {}, failures={EP: "app 'drift', endpoint 'x': ZeroDivisionError"}))
    (event,) = m.inspection.events("mm-app-failed")
    assert event.kind == "mm-app-failed" and event.detail and "ZeroDivisionError" in event.detail
    assert m.store.notifications()[0].subject == "[medium] shop: monitoring app failed on name-aaaa/drift/app"


def test_entity_filter_and_suspected_kind(mm: Monitoring, clock: Clock) -> None:
    only_ep2 = AlertConfig(
        name="ep2",
        trigger=["data-drift-suspected"],
        notifications=[LogChannel()],
        entities=EntityFilter([EP2]),
    )
    m = manager(mm, clock, only_ep2)
    m.record_report(report(window(), {EP: ResultStatusApp.potential_detection, EP2: DETECTED}))
    assert m.store.notifications() == []
    # evaluated all the same, the detected one of a kind no alert watches too: never claimed again
    assert sorted((e.kind, e.evaluated) for e in m.inspection.events()) == [
        ("data-drift-detected", True),
        ("data-drift-suspected", True),
    ]
    m.record_report(report(window(1), {EP2: ResultStatusApp.potential_detection}))
    assert len(m.store.notifications()) == 1


def test_auto_reset_and_manual_reset(mm: Monitoring, clock: Clock) -> None:
    auto = data_drift_detected([LogChannel()], name="auto", cooldown=0)
    manual = data_drift_detected([LogChannel()], name="manual", reset_policy="manual", cooldown="1d")
    m = manager(mm, clock, auto, manual)
    m.record_report(report(window(0), {EP: DETECTED}))
    states = {a.name: a.state for a in m.inspection.list_alerts()}
    assert states == {"auto": "active", "manual": "active"}
    m.record_report(report(window(1), {EP: CLEAN}))
    assert {a.name: a.state for a in m.inspection.list_alerts()} == {"auto": "inactive", "manual": "active"}
    assert m.inspection.reset("manual") == 1
    assert {a.name: a.state for a in m.inspection.list_alerts()} == {"auto": "inactive", "manual": "inactive"}


def test_a_thousand_events_are_grouped_into_one_message_per_channel(mm: Monitoring, clock: Clock) -> None:
    """1,000 drift events in one window across 100 endpoints, alert on `*`: one message per
    channel listing every entity (50 in detail), not 1,000 messages."""
    m = manager(mm, clock, data_drift_detected([LogChannel(), LogChannel(level="ERROR")]))
    r = AppWindowReport(app="drift", window=window())
    for e in range(100):
        endpoint_id = f"{e:032x}"
        r.endpoint_names[endpoint_id] = f"model-{e}"
        r.outputs[endpoint_id] = (
            [
                ModelMonitoringApplicationResult(f"r{i}", 0.9, ResultKindApp.data_drift, DETECTED)
                for i in range(10)
            ],
            [],
        )
    assert m.record_report(r) == 1000
    notes = m.store.notifications()
    assert len(notes) == 2
    payload = notes[0].payload
    assert payload["event_count"] == 1000 and payload["entity_count"] == 1000
    assert len(payload["events"]) == 50 and payload["truncated"]
    assert "and 999 more" in notes[0].subject and "… and 950 more events" in payload["text"]


def test_webhook_is_signed_and_secrets_stay_out_of_storage(
    mm: Monitoring, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MM_HOOK_SECRET", "very-secret-key")
    with http_sink() as sink:
        m = manager(mm, clock, data_drift_detected([WebhookChannel(sink.url, secret_env="MM_HOOK_SECRET")]))
        m.record_report(report(window(), {EP: DETECTED}))
        delivered = m.deliver_due()
        assert delivered.sent == 1
        (request,) = sink.requests
        assert request["headers"][SIGNATURE_HEADER.lower()] == signature("very-secret-key", request["body"])
        body = json.loads(request["body"])
        assert body["alert"] == "data-drift-detected" and body["severity"] == "high"
        assert body["events"][0]["endpoint_id"] == EP
    dump = "\n".join(
        str(r) for t in db.metadata.sorted_tables for r in mm.engine.connect().execute(sa.select(t))
    )
    assert "very-secret-key" not in dump and "very-secret-key" not in caplog.text
    assert m.store.notifications()[0].status == "sent"


def test_slack_message_format(mm: Monitoring, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_sink() as slack:
        monkeypatch.setenv("MM_SLACK_URL", slack.url)
        m = manager(mm, clock, data_drift_detected([SlackChannel(url_env="MM_SLACK_URL")]))
        m.record_report(report(window(), {EP: DETECTED}))
        assert m.deliver_due().sent == 1
        (body,) = slack.bodies()
        assert body["text"].startswith("[high] shop: data drift detected on")
        assert body["blocks"][0]["type"] == "header" and body["blocks"][1]["text"]["type"] == "mrkdwn"
        assert "name-aaaa / drift / general_drift" in body["blocks"][1]["text"]["text"]
        stored = json.dumps([asdict(n) for n in m.store.notifications()], default=str)
        assert slack.url not in stored


def test_email_with_auth_and_a_rejected_login(
    mm: Monitoring, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_SMTP_USER", "alerts")
    monkeypatch.setenv("MM_SMTP_PASSWORD", "right")
    with smtp_server(user="alerts", password="right") as smtp:
        channel = EmailChannel(
            host=smtp.host,
            port=smtp.port,
            to=["team@example.com"],
            sender="mm@example.com",
            username_env="MM_SMTP_USER",
            password_env="MM_SMTP_PASSWORD",
            timeout_seconds=5,
        )
        m = manager(mm, clock, data_drift_detected([channel]))
        m.record_report(report(window(), {EP: DETECTED}))
        assert m.deliver_due().sent == 1
        (message,) = smtp.messages
        assert message["To"] == "team@example.com" and "data drift detected" in message["Subject"]
        assert smtp.logins == ["alerts"]
        monkeypatch.setenv("MM_SMTP_PASSWORD", "wrong")
        m.record_report(report(window(1), {EP2: DETECTED}))
        result = m.deliver_due()
        assert result.retrying == 1
        failed = next(n for n in m.store.notifications() if n.status == "pending")
        assert failed.last_error and "authentication rejected" in failed.last_error
        assert "wrong" not in failed.last_error
        assert [a.ok for a in m.store.attempts(failed.id)] == [False]


def test_email_over_starttls(
    mm: Monitoring, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("MM_SMTP_USER", "alerts")
    monkeypatch.setenv("MM_SMTP_PASSWORD", "pw")
    with smtp_server(user="alerts", password="pw", tls=(cert, key)) as smtp:
        channel = EmailChannel(
            host=smtp.host,
            port=smtp.port,
            to="team@example.com",
            sender="mm@example.com",
            starttls=True,
            username_env="MM_SMTP_USER",
            password_env="MM_SMTP_PASSWORD",
            ca_file=cert,
        )
        m = manager(mm, clock, data_drift_detected([channel]))
        m.record_report(report(window(), {EP: DETECTED}))
        assert m.deliver_due().sent == 1
        assert len(smtp.messages) == 1


def test_log_channel(mm: Monitoring, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    m = manager(mm, clock, data_drift_detected([LogChannel()]))
    m.record_report(report(window(), {EP: DETECTED}))
    with caplog.at_level("WARNING", logger="mm_dagster.alerts"):
        assert m.deliver_due().sent == 1
    assert "data drift detected" in caplog.text


def test_a_hanging_webhook_times_out_and_is_retried_with_backoff(mm: Monitoring, clock: Clock) -> None:
    with http_sink() as sink:
        sink.delay = 3.0
        m = manager(mm, clock, data_drift_detected([WebhookChannel(sink.url, timeout_seconds=0.5)]))
        m.record_report(report(window(), {EP: DETECTED}))
        started = time.monotonic()
        assert m.deliver_due().retrying == 1
        assert time.monotonic() - started < 2.5
        (note,) = m.store.notifications()
        assert note.last_error and "timed out" in note.last_error.lower()
        assert note.next_attempt_at == clock.now + timedelta(seconds=30)
        assert m.deliver_due().sent == 0  # not due yet
        sink.delay = 0
        clock.advance(seconds=31)
        assert m.deliver_due().sent == 1
        assert [a.ok for a in m.store.attempts(note.id)] == [False, True]


def test_server_down_then_5xx_then_up(mm: Monitoring, clock: Clock) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    m = manager(mm, clock, data_drift_detected([WebhookChannel(dead, timeout_seconds=1)]), max_attempts=3)
    m.record_report(report(window(), {EP: DETECTED}))
    assert m.deliver_due().retrying == 1
    clock.advance(seconds=30)
    assert m.deliver_due().retrying == 1
    clock.advance(seconds=60)
    assert m.deliver_due().failed == 1  # gave up after max_attempts, recorded
    (note,) = m.store.notifications()
    assert note.status == "failed" and len(m.store.attempts(note.id)) == 3
    with http_sink() as sink:
        sink.status = 503
        m2 = manager(mm, clock, data_drift_detected([WebhookChannel(sink.url)]))
        m2.record_report(report(window(1), {EP2: DETECTED}))
        assert m2.deliver_due().retrying == 1
        assert "HTTP 503" in (m2.store.notifications()[-1].last_error or "")
        sink.status = 200
        clock.advance(minutes=1)
        assert m2.deliver_due().sent == 1


CRASH_SCRIPT = """
import os, sys
from datetime import datetime, UTC
from mm_dagster.alerts import WebhookChannel, data_drift_detected
from mm_dagster.alerts.service import AlertService
from mm_dagster.core.outputs import ModelMonitoringApplicationResult
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage.alert_store import AlertStore
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
mm = Monitoring(home=sys.argv[1])
m = AlertService(AlertStore(mm.engine), [data_drift_detected([WebhookChannel(sys.argv[2])])])
r = AppWindowReport(app="drift", window=Window.containing(datetime(2026, 11, 20, tzinfo=UTC), 10))
r.outputs["a" * 32] = ([ModelMonitoringApplicationResult("g", 0.9, ResultKindApp.data_drift,
                                                          ResultStatusApp.detected)], [])
m.record_report(r)
os._exit(9)  # killed after the outbox write, before delivery
"""


@pytest.mark.slow  # runs a subprocess that kills itself
def test_a_process_killed_after_the_outbox_write_delivers_exactly_once(mm: Monitoring, clock: Clock) -> None:
    with http_sink() as sink:
        proc = subprocess.run(
            [sys.executable, "-c", CRASH_SCRIPT, mm.settings.home, sink.url], capture_output=True, text=True
        )
        assert proc.returncode == 9, proc.stderr
        assert sink.requests == []
        m = AlertService(AlertStore(mm.engine), [data_drift_detected([WebhookChannel(sink.url)])])
        assert m.deliver_due().sent == 1
        assert m.deliver_due().sent == 0
        assert len(sink.requests) == 1


def test_removed_channel_is_recorded_as_failed(mm: Monitoring, clock: Clock) -> None:
    m = manager(mm, clock, data_drift_detected([LogChannel(), LogChannel()]))
    m.record_report(report(window(), {EP: DETECTED}))
    shrunk = manager(mm, clock, data_drift_detected([LogChannel()]))
    result = shrunk.deliver_due()
    assert result.sent == 1 and result.failed == 1


def test_cli_lists_events_notifications_and_resets(
    mm: Monitoring, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_dagster.cli import main

    yaml_path = tmp_path / "alerts.yaml"
    yaml_path.write_text(
        "- {name: drift, trigger: data-drift-detected, reset_policy: manual, notifications: [{kind: log}]}\n"
    )
    from mm_dagster.alerts import load_alerts_yaml

    m = AlertService(AlertStore(mm.engine), load_alerts_yaml(yaml_path), clock=clock)
    m.record_report(report(window(), {EP: DETECTED}))
    args = ["--alerts-yaml", str(yaml_path), "alerts"]
    assert main([*args, "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert listed["name"] == "drift" and listed["state"] == "active"
    assert main([*args, "events", "drift"]) == 0
    assert "data-drift-detected" in capsys.readouterr().out
    assert main([*args, "deliver"]) == 0
    assert "sent 1" in capsys.readouterr().out
    assert main([*args, "notifications", "drift", "--attempts", "--json"]) == 0
    assert '"status": "sent"' in capsys.readouterr().out
    assert main([*args, "reset", "drift"]) == 0
    assert "reset 1" in capsys.readouterr().out
    assert main([*args, "reset", "nope"]) == 2
    assert "unknown alert 'nope'" in capsys.readouterr().err
