"""Delivery when channels misbehave, against real loopback servers: a non-HTTP answer, a header
the email code refuses, redirects, giving up (and re-sending), notification ids, secret URLs."""

import base64
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from mm_dagster.alerts import (
    AlertConfig,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    data_drift_detected,
    load_alerts_yaml,
)
from mm_dagster.alerts.channels import NOTIFICATION_ID_HEADER, SIGNATURE_HEADER, message_id
from mm_dagster.alerts.service import AlertService
from mm_dagster.core.errors import AlertConfigError
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage import database as db
from mm_dagster.storage.alert_store import AlertStore

from .servers import free_port, http_sink, smtp_server
from .test_alert_delivery import DETECTED, EP, EP2, Clock, report, window


@pytest.fixture
def clock() -> Clock:
    return Clock()


def service(mm: Monitoring, clock: Clock, *alerts: AlertConfig, **kwargs: object) -> AlertService:
    return AlertService(AlertStore(mm.engine), alerts, clock=clock, project="shop", **kwargs)  # type: ignore[arg-type]


def stored_text(mm: Monitoring) -> str:
    with mm.engine.connect() as conn:
        return "\n".join(str(r) for t in db.metadata.sorted_tables for r in conn.execute(sa.select(t)))


# -- 1. one bad notification never stalls delivery ---------------------------------------------
def test_a_non_http_answer_is_a_failed_attempt_and_the_others_go_on(mm: Monitoring, clock: Clock) -> None:
    with http_sink() as garbage, http_sink() as good:
        garbage.raw_reply = b"this is not HTTP\r\n\r\n"
        m = service(mm, clock, data_drift_detected([WebhookChannel(garbage.url), WebhookChannel(good.url)]))
        m.record_report(report(window(), {EP: DETECTED}))
        result = m.deliver_due()
        assert (result.sent, result.retrying) == (1, 1)
        assert len(good.requests) == 1
        bad, ok = m.store.notifications()
        assert bad.status == "pending" and "BadStatusLine" in (bad.last_error or "")
        assert bad.next_attempt_at == clock.now + m.delivery.backoff(1)
        assert ok.status == "sent"


def test_a_subject_the_email_code_refuses_is_a_failed_attempt(mm: Monitoring, clock: Clock) -> None:
    with smtp_server() as smtp, http_sink() as good:
        email = EmailChannel(host=smtp.host, port=smtp.port, to="team@example.com", sender="mm@example.com")
        # the project name is not alert config: a line break in it reaches the Subject header
        m = AlertService(
            AlertStore(mm.engine),
            [data_drift_detected([email, WebhookChannel(good.url)])],
            clock=clock,
            project="shop\r\nBcc: evil@example.com",
        )
        m.record_report(report(window(), {EP: DETECTED}))
        result = m.deliver_due()
        assert (result.sent, result.retrying) == (1, 1)
        assert smtp.messages == [] and len(good.requests) == 1
        failed = m.store.notifications()[0]
        assert failed.last_error and "ValueError" in failed.last_error


def test_line_breaks_and_non_latin1_header_values_are_refused_at_config_load(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError, match=r"alert 'drift': summary.*one line"):
        data_drift_detected([WebhookChannel("http://127.0.0.1:9/h")], name="drift", summary="a\nb")
    with pytest.raises(AlertConfigError, match=r"to address.*one line"):
        EmailChannel(host="h", to=["team@example.com\r\nBcc: x@example.com"], sender="mm@example.com")
    with pytest.raises(AlertConfigError, match=r"sender.*one line"):
        EmailChannel(host="h", to=["team@example.com"], sender="mm@example.com\nX: y")
    with pytest.raises(AlertConfigError, match=r"header 'X-Team' value.*one line"):
        WebhookChannel("http://127.0.0.1:9/h", headers={"X-Team": "a\r\nX-Evil: 1"})
    with pytest.raises(AlertConfigError, match=r"header 'X-Team' value.*not latin-1"):
        WebhookChannel("http://127.0.0.1:9/h", headers={"X-Team": "cost €"})
    with pytest.raises(AlertConfigError, match="header name 'X Team'"):
        WebhookChannel("http://127.0.0.1:9/h", headers={"X Team": "a"})
    yaml_path = tmp_path / "alerts.yaml"
    yaml_path.write_text(
        "- name: drift\n  trigger: data-drift-detected\n  notifications:\n"
        "    - {kind: webhook, url: 'http://127.0.0.1:9/h', headers: {X-Team: \"a\\r\\nX-Evil: 1\"}}\n"
    )
    with pytest.raises(AlertConfigError, match=r"alert 'drift'.*webhook.*header 'X-Team' value"):
        load_alerts_yaml(yaml_path)


# -- 2. no redirects for POSTs -----------------------------------------------------------------
def test_a_redirect_is_a_failed_attempt_naming_the_location(
    mm: Monitoring, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_HOOK_SECRET", "very-secret-key")
    with http_sink() as hook, http_sink() as elsewhere:
        hook.status = 302
        hook.location = elsewhere.url + "?token=s3cret-token"
        m = service(mm, clock, data_drift_detected([WebhookChannel(hook.url, secret_env="MM_HOOK_SECRET")]))
        m.record_report(report(window(), {EP: DETECTED}))
        assert m.deliver_due().retrying == 1
        assert elsewhere.requests == []  # not re-sent as a GET, no signature forwarded
        assert [r["method"] for r in hook.requests] == ["POST"]
        assert SIGNATURE_HEADER.lower() in hook.requests[0]["headers"]
        (note,) = m.store.notifications()
        assert note.last_error and "HTTP 302" in note.last_error
        assert elsewhere.url + "?***" in note.last_error
        assert "s3cret-token" not in stored_text(mm)


# -- 3. giving up is visible and reversible ----------------------------------------------------
def test_giving_up_raises_an_event_routed_to_another_alert_without_looping(
    mm: Monitoring, clock: Clock
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    with http_sink() as ops:
        drift = data_drift_detected([WebhookChannel(dead, timeout_seconds=1)], name="drift")
        ops_alert = AlertConfig(
            name="ops", trigger=["mm-notification-failed"], notifications=[WebhookChannel(ops.url)]
        )
        m = service(mm, clock, drift, ops_alert, max_attempts=1)
        m.record_report(report(window(), {EP: DETECTED}))
        result = m.deliver_due()
        assert (result.failed, result.failure_events) == (1, 1)
        (event,) = m.inspection.events("ops")
        given_up = m.store.notifications("drift")[0]
        assert event.kind == "mm-notification-failed" and event.entity == f"drift.notification.{given_up.id}"
        assert event.app == "drift" and event.detail and "Connection refused" in event.detail
        assert m.deliver_due().sent == 1
        (body,) = ops.bodies()
        assert body["alert"] == "ops" and body["events"][0]["kind"] == "mm-notification-failed"
        assert body["events"][0]["app"] == "drift"
        summaries = {s.name: s.failed_notifications for s in m.inspection.list_alerts()}
        assert summaries == {"drift": 1, "ops": 0}

    # the ops channel is now dead too: its failure raises no event about itself
    m.record_report(report(window(1), {EP2: DETECTED}))
    clock.advance(hours=2)
    for _ in range(4):
        m.deliver_due()
        clock.advance(hours=2)
    kinds = [str(e.kind) for e in m.inspection.events()]
    assert kinds.count("mm-notification-failed") == 2  # one per drift notification given up on
    statuses = [(n.alert, n.status) for n in m.store.notifications()]
    assert statuses == [("drift", "failed"), ("ops", "sent"), ("drift", "failed"), ("ops", "failed")]


def test_cli_counts_failed_notifications_and_resends_them(
    mm: Monitoring, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_dagster.cli import main

    dead = f"http://127.0.0.1:{free_port()}/hook"
    yaml_path = tmp_path / "alerts.yaml"
    yaml_path.write_text(
        "- {name: drift, trigger: data-drift-detected,"
        f" notifications: [{{kind: webhook, url: '{dead}'}}]}}\n"
    )
    m = AlertService(AlertStore(mm.engine), load_alerts_yaml(yaml_path), clock=clock, max_attempts=1)
    m.record_report(report(window(), {EP: DETECTED}))
    assert m.deliver_due().failed == 1
    args = ["--alerts-yaml", str(yaml_path), "alerts"]
    assert main([*args, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["failed_notifications"] == 1
    assert main([*args, "resend", "drift"]) == 0
    assert "re-queued 1" in capsys.readouterr().out
    (note,) = m.store.notifications()
    assert (note.status, note.attempts) == ("pending", 0)
    assert [a.ok for a in m.store.attempts(note.id)] == [False]  # the audit stays
    assert main([*args, "resend", "--id", str(note.id)]) == 0
    assert "re-queued 0" in capsys.readouterr().out  # pending, not failed
    assert main([*args, "resend", "nope"]) == 2


def test_resend_when_healthy_requeues_once_the_channel_delivers(mm: Monitoring, clock: Clock) -> None:
    with http_sink() as sink:
        sink.status = 500
        for opted_in in (False, True):
            clock.advance(hours=2)
            m = service(
                mm,
                clock,
                data_drift_detected([WebhookChannel(sink.url)], name=f"drift-{int(opted_in)}", cooldown=0),
                max_attempts=1,
                resend_when_healthy=opted_in,
            )
            sink.status = 500
            m.record_report(report(window(2 * opted_in), {EP: DETECTED}))
            assert m.deliver_due().failed == 1
            sink.status = 200
            m.record_report(report(window(2 * opted_in + 1), {EP: DETECTED}))
            assert m.deliver_due().requeued == int(opted_in)
            assert m.deliver_due().sent == int(opted_in)
            statuses = [n.status for n in m.store.notifications(f"drift-{int(opted_in)}")]
            assert statuses == (["sent", "sent"] if opted_in else ["failed", "sent"])


# -- 4. at-least-once needs an id --------------------------------------------------------------
def test_every_channel_carries_a_stable_notification_id(
    mm: Monitoring, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_sink() as hook, http_sink() as slack, smtp_server() as smtp:
        monkeypatch.setenv("MM_SLACK_URL", slack.url)
        email = EmailChannel(host=smtp.host, port=smtp.port, to="team@example.com", sender="mm@example.com")
        channels = [WebhookChannel(hook.url), SlackChannel(url_env="MM_SLACK_URL"), email]
        m = service(mm, clock, data_drift_detected(channels))
        m.record_report(report(window(), {EP: DETECTED}))
        hook.status = 503
        assert m.deliver_due().retrying == 1
        hook.status = 200
        clock.advance(minutes=1)
        assert m.deliver_due().sent == 1
        ids = [n.notification_id for n in m.store.notifications()]
        assert len(set(ids)) == 3 and all(n.uid for n in m.store.notifications())
        first, retry = hook.requests
        assert first["headers"][NOTIFICATION_ID_HEADER.lower()] == ids[0]
        assert retry["headers"][NOTIFICATION_ID_HEADER.lower()] == ids[0]
        assert [b["notification_id"] for b in hook.bodies()] == [ids[0], ids[0]]
        assert slack.bodies()[0]["notification_id"] == ids[1]
        assert smtp.messages[0]["Message-ID"] == message_id(ids[2])


# -- 5. secrets in URLs ------------------------------------------------------------------------
def test_webhook_url_from_the_environment_and_redacted_urls(
    mm: Monitoring, clock: Clock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AlertConfigError, match="exactly one of url and url_env"):
        WebhookChannel()
    with pytest.raises(AlertConfigError, match="exactly one of url and url_env"):
        WebhookChannel("http://127.0.0.1:9/h", url_env="MM_HOOK_URL")
    with http_sink() as sink:
        monkeypatch.setenv("MM_HOOK_URL", sink.url + "?token=env-token-1")
        from_env = WebhookChannel(url_env="MM_HOOK_URL")
        assert from_env.label == "webhook:$MM_HOOK_URL"
        port = sink.url.split(":")[2].split("/")[0]
        with_credentials = WebhookChannel(f"http://user:hunter2@127.0.0.1:{port}/hook?token=inline-token-2")
        assert with_credentials.label == f"webhook:http://***@127.0.0.1:{port}/hook?***"
        sink.status = 503
        m = service(mm, clock, data_drift_detected([from_env, with_credentials]))
        m.record_report(report(window(), {EP: DETECTED}))
        assert m.deliver_due().retrying == 2
        assert [r["path"] for r in sink.requests] == ["/hook?token=env-token-1", "/hook?token=inline-token-2"]
        basic = base64.b64encode(b"user:hunter2").decode()
        assert sink.requests[1]["headers"]["authorization"] == f"Basic {basic}"  # userinfo as Basic auth
        sink.location = "http://x:hunter2@127.0.0.1/elsewhere?token=redirect-token-3"
        sink.status = 307
        clock.advance(minutes=5)
        assert m.deliver_due().retrying == 2
    from mm_dagster.cli.alerts import NOTIFICATION_COLUMNS, print_redacted

    for as_json in (True, False):
        print_redacted(
            [asdict(n) for n in m.store.notifications()], NOTIFICATION_COLUMNS, as_json, "notifications"
        )
    shown = capsys.readouterr().out + stored_text(mm)
    assert "HTTP 307" in shown and "http://***@127.0.0.1/elsewhere?***" in shown
    for secret in ("env-token-1", "inline-token-2", "redirect-token-3", "hunter2"):
        assert secret not in shown
