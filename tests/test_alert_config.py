from datetime import timedelta
from pathlib import Path

import pytest
from dagster import EnvVar

from mm_dagster.alerts import (
    AlertConfig,
    Criteria,
    EmailChannel,
    EntityFilter,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    data_drift_detected,
    load_alerts_yaml,
)
from mm_dagster.core.alerting.config import parse_duration
from mm_dagster.core.errors import AlertConfigError
from mm_dagster.core.schemas import EventKind

GOOD_YAML = """
alerts:
  - name: drift-on-fraud
    summary: "{{project}}: drift on {{entity}}"
    severity: high
    trigger: [data-drift-detected, data-drift-suspected]
    entities: {endpoints: ["fraud-model"], app: histogram-data-drift, result: general_drift}
    criteria: {count: 2, period: 30m}
    reset_policy: manual
    cooldown: 2h
    notifications:
      - {kind: webhook, url: "http://127.0.0.1:9/hook", secret_env: MM_TEST_SECRET, timeout_seconds: 2}
      - {kind: log}
  - name: app-failures
    trigger: mm-app-failed
    notifications: [{kind: log, level: ERROR}]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return path


def test_yaml_loads_every_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_TEST_SECRET", "s3cret")
    drift, failures = load_alerts_yaml(write(tmp_path, GOOD_YAML))
    assert drift.trigger == (EventKind.data_drift_detected, EventKind.data_drift_suspected)
    assert drift.criteria == Criteria(2, timedelta(minutes=30))
    assert drift.cooldown == timedelta(hours=2) and drift.reset_policy == "manual"
    assert drift.severity == "high"
    assert drift.entities == EntityFilter(("fraud-model",), "histogram-data-drift", "general_drift")
    assert isinstance(drift.notifications[0], WebhookChannel)
    assert drift.notifications[0].secret_env == "MM_TEST_SECRET"
    assert failures.criteria == Criteria() and failures.cooldown == timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("alerts: [name: x\n  - bad", "malformed YAML"),
        ("alerts: {name: x}", "expected a list of alerts"),
        ("- {name: Bad_Name, trigger: mm-app-failed, notifications: [{kind: log}]}", "invalid alert name"),
        ("- {name: a, trigger: data-drift-happened, notifications: [{kind: log}]}", "unknown event kind"),
        (
            "- {name: a, trigger: mm-app-failed, notifications: [{kind: pager}]}",
            "unknown channel kind 'pager'",
        ),
        (
            "- {name: a, trigger: mm-app-failed, criteria: {period: soon}, notifications: [{kind: log}]}",
            "period 'soon' does not parse",
        ),
        (
            "- {name: a, trigger: mm-app-failed, notifications: [{kind: webhook, url: ftp://x/y}]}",
            "not an http",
        ),
        (
            "- {name: a, trigger: mm-app-failed, notifications: [{kind: webhook, url: 'http://h/x', "
            "secret_env: MM_UNSET_SECRET}]}",
            "MM_UNSET_SECRET is not set",
        ),
        (
            "- {name: a, trigger: mm-app-failed, notifications: [{kind: slack, url_env: MM_UNSET_SLACK}]}",
            "not set",
        ),
        (
            "- {name: a, trigger: mm-app-failed, summary: 'hi {{endpoint}}', notifications: [{kind: log}]}",
            r"unknown placeholder \{\{endpoint\}\}",
        ),
        (
            "- {name: a, trigger: mm-app-failed, severity: urgent, notifications: [{kind: log}]}",
            "low/medium/high",
        ),
        ("- {name: a, trigger: mm-app-failed, notifications: []}", "no notifications"),
        ("- {name: a, trigger: mm-app-failed, colour: red, notifications: [{kind: log}]}", "colour"),
    ],
)
def test_bad_yaml_gets_clear_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(AlertConfigError, match=match):
        load_alerts_yaml(write(tmp_path, text))


def test_templates_are_two_lines() -> None:
    alert = data_drift_detected([LogChannel()])
    assert alert.trigger == (EventKind.data_drift_detected,) and alert.severity == "high"
    assert "{{entity}}" in alert.summary


def test_python_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_SLACK", "http://127.0.0.1:1/slack")
    assert SlackChannel(url_env=EnvVar("MM_SLACK")).url_env == "MM_SLACK"
    with pytest.raises(AlertConfigError, match="username_env and password_env"):
        EmailChannel(host="h", to=["a@b"], sender="c@d", username_env="U")
    with pytest.raises(AlertConfigError, match="count must be"):
        Criteria(count=0)
    with pytest.raises(AlertConfigError, match="unknown channel"):
        AlertConfig(name="a", trigger=["mm-app-failed"], notifications=["log"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("1.5h", timedelta(hours=1.5)),
        (30, timedelta(seconds=30)),
        ("2d", timedelta(days=2)),
    ],
)
def test_durations(raw: object, expected: timedelta) -> None:
    assert parse_duration(raw, "x") == expected
