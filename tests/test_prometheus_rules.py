"""deploy/: the alert rules pass `promtool check rules` and their unit tests (`promtool test
rules`), every alert is tested firing and silent, the example config is valid, and every query of
the Grafana dashboard parses and reads only metrics that `/metrics` exposes."""

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.links import UiLinks
from mm_dagster.monitoring import Monitoring
from mm_dagster.service.prometheus import StoreCollector
from mm_dagster.service.settings import ServiceSettings
from tests.prometheus_home import BASE_PERIOD, fill_home

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "mm_dagster.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)
# Grafana's variables, replaced by values a query may hold in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$endpoint": ".*"}
METRIC_NAME = re.compile(r"\bmm_[a-z0-9_]+\b")


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _alert_names() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"]]


def _panel_exprs(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        for target in panel.get("targets", []):
            yield target["expr"]
        yield from _panel_exprs(panel.get("panels", []))  # rows may hold panels


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(_panel_exprs(dashboard["panels"]))
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):  # label_values(metric, label): the metric is a selector
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", query["query"])
            assert found, f"variable {variable['name']}: unexpected query {query['query']!r}"
            queries.append(found.group(1))
    return queries


def _substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr!r}"
    return expr


@needs_promtool
def test_rules_are_valid() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alert_names())} rules found" in checked.stdout


@needs_promtool
def test_rule_unit_tests_pass() -> None:
    tested = _promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    for alert in _alert_names():
        assert alert in firing, f"{alert} is never tested firing"
        assert alert in silent, f"{alert} is never tested staying silent"
    rules = yaml.safe_load(RULES.read_text())
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert "{{ $labels.endpoint }}" in rule["annotations"]["dashboard"], rule["alert"]


@needs_promtool
def test_example_config_is_valid() -> None:
    checked = _promtool("check", "config", str(CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """Each query becomes a recording rule: `promtool check rules` parses its PromQL."""
    queries = _dashboard_queries()
    assert len(queries) >= 10
    records = [{"record": f"dashboard:query_{i}", "expr": _substituted(q)} for i, q in enumerate(queries)]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = _promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_and_rules_read_only_exposed_metrics(tmp_path: Path) -> None:
    now = datetime(2026, 11, 20, 12, 3, 30, tzinfo=UTC)
    fill_home(tmp_path, fixed_clock(now))
    with Monitoring(home=str(tmp_path), base_period=BASE_PERIOD, clock=fixed_clock(now)) as mm:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(lambda: mm, ServiceSettings(mm.settings, UiLinks())))
        exposed = {
            sample.name
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
        }
    dashboard = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"endpoint"}
    used = {name for q in _dashboard_queries() for name in METRIC_NAME.findall(q)}
    rules = yaml.safe_load(RULES.read_text())
    used |= {name for g in rules["groups"] for r in g["rules"] for name in METRIC_NAME.findall(r["expr"])}
    assert used, "no mm_ metric found in the queries"
    assert used <= exposed, f"not exposed by /metrics: {sorted(used - exposed)}"
    assert {"mm_result_status", "mm_endpoint_latency_seconds_bucket", "mm_monitoring_lag_seconds"} <= used


def test_dashboard_has_the_panels_a_user_needs() -> None:
    queries = " ".join(_dashboard_queries())
    for needed in (
        "mm_result_status",
        "mm_result_value",
        "mm_metric_value",
        "rate(mm_endpoint_events_total",
        "rate(mm_endpoint_errors_total",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "mm_monitoring_lag_seconds",
    ):
        assert needed in queries, f"no dashboard query uses {needed}"
    dashboard = json.loads(DASHBOARD.read_text())
    endpoint = next(v for v in dashboard["templating"]["list"] if v["name"] == "endpoint")
    assert endpoint["multi"] and endpoint["includeAll"]
    panel_queries = list(_panel_exprs(dashboard["panels"]))
    per_endpoint = [q for q in panel_queries if "mm_endpoint_" in q and not q.startswith("count(")]
    assert per_endpoint
    assert all('endpoint=~"$endpoint"' in q for q in per_endpoint)  # the variable filters them
