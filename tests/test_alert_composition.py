"""Event extraction, message composition and one evaluation's rules as pure functions: no
database, no channel sends."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mm_dagster.alerts import EmailChannel, LogChannel, SlackChannel, WebhookChannel, data_drift_detected
from mm_dagster.core.alerting.channel import Channel
from mm_dagster.core.alerting.config import CHECKS_ALERT, AlertConfig, EntityFilter
from mm_dagster.core.alerting.events import (
    AlertEvent,
    clean_entities_of_report,
    events_of_report,
)
from mm_dagster.core.alerting.messages import alert_message, check_failure_message
from mm_dagster.core.alerting.outbox import alert_dedup_key, check_dedup_key
from mm_dagster.core.alerting.rules import EntityState, apply_rules
from mm_dagster.core.outputs import ModelMonitoringApplicationResult
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import EventKind, ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(minutes=10))
EP, EP2 = "a" * 32, "b" * 32


def result(name: str, status: ResultStatusApp, value: float = 0.8) -> ModelMonitoringApplicationResult:
    return ModelMonitoringApplicationResult(name, value, ResultKindApp.data_drift, status)


def event(endpoint: str = EP, result_name: str | None = "general_drift", **changes: Any) -> AlertEvent:
    base = AlertEvent(
        kind=EventKind.data_drift_detected,
        entity=f"{endpoint}.drift.result.{result_name}",
        endpoint_id=endpoint,
        endpoint_name=f"name-{endpoint[:4]}",
        app="drift",
        result_name=result_name,
        window_start=WINDOW.start,
        window_end=WINDOW.end,
        value=0.8,
        status=ResultStatusApp.detected,
        detail=None,
    )
    return replace(base, **changes)


def test_detected_and_suspected_results_raise_typed_events() -> None:
    report = AppWindowReport(app="drift", window=WINDOW, endpoint_names={EP: "fraud"})
    report.outputs[EP] = (
        [
            result("general_drift", ResultStatusApp.detected),
            result("f0", ResultStatusApp.potential_detection, 0.4),
            result("f1", ResultStatusApp.no_detection, 0.1),
            result("f2", ResultStatusApp.irrelevant, 0.0),
        ],
        [],
    )
    report.outputs[EP2] = ([result("general_drift", ResultStatusApp.detected)], [])
    detected, suspected, unnamed = events_of_report(report)
    assert detected == AlertEvent(
        kind=EventKind.data_drift_detected,
        entity=f"{EP}.drift.result.general_drift",
        endpoint_id=EP,
        endpoint_name="fraud",
        app="drift",
        result_name="general_drift",
        window_start=WINDOW.start,
        window_end=WINDOW.end,
        value=0.8,
        status=ResultStatusApp.detected,
        detail=None,
    )
    assert suspected.kind == EventKind.data_drift_suspected and suspected.entity == f"{EP}.drift.result.f0"
    assert unnamed.endpoint_name == EP2  # no name known: the id stands in


def test_app_failures_raise_mm_app_failed_with_the_error_truncated() -> None:
    report = AppWindowReport(app="drift", window=WINDOW, failures={EP: "x" * 5000})
    (failure,) = events_of_report(report)
    assert failure.kind == EventKind.mm_app_failed and failure.entity == f"{EP}.drift.app"
    assert failure.result_name is None and failure.value is None and failure.status is None
    assert failure.detail == "x" * 4000


def test_clean_entities_are_the_app_and_its_undetected_results() -> None:
    report = AppWindowReport(app="drift", window=WINDOW)
    report.outputs[EP] = (
        [result("g", ResultStatusApp.detected), result("f0", ResultStatusApp.no_detection)],
        [],
    )
    assert clean_entities_of_report(report) == [
        (f"{EP}.drift.app", WINDOW.end),
        (f"{EP}.drift.result.f0", WINDOW.end),
    ]


def test_one_message_groups_every_event_and_details_the_first_ones() -> None:
    alert = data_drift_detected([LogChannel()])
    events = [event(f"{e:032x}", f"r{i}") for e in range(3) for i in range(2)]
    message = alert_message(alert, events, project="shop", group_limit=4)
    assert message.subject == "[high] shop: data drift detected on name-0000/drift/r0 and 5 more"
    lines = message.text.splitlines()
    assert lines[0] == "- data-drift-detected name-0000 / drift / r0 window 2026-11-20 12:00 value 0.8000"
    assert len(lines) == 5 and lines[-1] == "… and 2 more events"
    payload = message.payload
    assert payload["alert"] == "data-drift-detected" and payload["project"] == "shop"
    assert payload["severity"] == "high" and payload["summary"] == message.subject
    assert payload["entity_count"] == 6 and payload["event_count"] == 6 and payload["truncated"]
    assert payload["entities"] == sorted(e.entity for e in events)
    assert payload["text"] == message.text
    assert len(payload["events"]) == 4
    assert payload["events"][0] == {
        "kind": "data-drift-detected",
        "entity": events[0].entity,
        "endpoint_id": events[0].endpoint_id,
        "endpoint_name": "name-0000",
        "app": "drift",
        "result": "r0",
        "window_start": "2026-11-20T12:00:00+00:00",
        "value": 0.8,
        "status": 2,
    }


def test_a_single_app_failure_message() -> None:
    alert = AlertConfig(name="failures", trigger=["mm-app-failed"], notifications=[LogChannel()])
    failure = event(
        kind=EventKind.mm_app_failed,
        entity=f"{EP}.drift.app",
        result_name=None,
        value=None,
        status=None,
        detail="ZeroDivisionError: " + "y" * 400,
    )
    message = alert_message(alert, [failure], project="shop")
    assert message.subject == "[medium] shop: failures on name-aaaa/drift/app"
    assert (
        message.text
        == "- mm-app-failed name-aaaa / drift window 2026-11-20 12:00: "
        + ("ZeroDivisionError: " + "y" * 400)[:300]
    )
    assert not message.payload["truncated"] and message.payload["events"][0]["result"] is None


def test_check_failure_message() -> None:
    message = check_failure_message(
        "mm/drift/results:within_thresholds",
        "2026-11-20-1200",
        "ERROR",
        {"detected": 3, "run_id": "r1"},
        "shop",
    )
    assert (
        message.subject
        == "[ERROR] shop: check mm/drift/results:within_thresholds failed for window 2026-11-20-1200"
    )
    assert message.text == "- detected: 3\n- run_id: r1"
    assert message.payload == {
        "alert": CHECKS_ALERT,
        "project": "shop",
        "check": "mm/drift/results:within_thresholds",
        "window": "2026-11-20-1200",
        "severity": "ERROR",
        "summary": message.subject,
        "text": message.text,
        "metadata": {"detected": "3", "run_id": "r1"},
    }


def test_dedup_keys_depend_on_the_events_and_the_window() -> None:
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    one, two = (
        AlertEvent(
            EventKind.data_drift_detected,
            f"e{i}.app.drift",
            f"e{i}",
            f"m{i}",
            "app",
            "drift",
            t0,
            t0 + timedelta(minutes=10),
            0.9,
            ResultStatusApp.detected,
            None,
        )
        for i in (1, 2)
    )
    later = replace(one, window_start=t0 + timedelta(minutes=10))
    # the events' identities, not the ids or order concurrent writers stored them in
    assert alert_dedup_key("a", 0, [one, two]) == alert_dedup_key("a", 0, [two, one])
    assert alert_dedup_key("a", 0, [one, two]) != alert_dedup_key("a", 0, [one, later])
    assert alert_dedup_key("a", 0, [one, two]) != alert_dedup_key("a", 1, [one, two])
    assert check_dedup_key(1, "c", "w") == "check|1|c|w"


def test_rules_fire_each_alert_once_per_watched_event_and_auto_reset_clean_entities() -> None:
    everything = data_drift_detected([LogChannel()], name="all", cooldown=0)
    only_ep2 = data_drift_detected([LogChannel()], name="ep2", entities=EntityFilter([EP2]))
    alerts = {a.name: a for a in (everything, only_ep2)}
    now = T0 + timedelta(minutes=11)
    outcome = apply_rules(alerts, [event(EP), event(EP2)], [], {}, now)
    assert outcome.fired == {"all": [event(EP), event(EP2)], "ep2": [event(EP2)]}
    assert set(outcome.changed) == {
        ("all", event(EP).entity),
        ("all", event(EP2).entity),
        ("ep2", event(EP2).entity),
    }
    assert all(s.active and s.last_notified_at == now for s in outcome.changed.values())

    later = WINDOW.end + timedelta(minutes=10)
    reset = apply_rules(alerts, [], [(event(EP).entity, later)], outcome.changed, now)
    assert reset.fired == {} and reset.changed == {
        ("all", event(EP).entity): EntityState(active=False, last_event_at=WINDOW.end, last_notified_at=now)
    }


def test_every_channel_follows_the_channel_protocol() -> None:
    channels = [
        WebhookChannel("http://127.0.0.1:9/hook"),
        SlackChannel(url_env="MM_UNUSED_SLACK"),
        EmailChannel(host="h", to="a@b", sender="c@d"),
        LogChannel(),
    ]
    assert all(isinstance(c, Channel) for c in channels)
    assert [c.label for c in channels] == [
        "webhook:http://127.0.0.1:9/hook",
        "slack:$MM_UNUSED_SLACK",
        "email:a@b",
        "log",
    ]
