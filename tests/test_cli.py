"""`mm` for people and scripts: tables with endpoint names, --json lines, one-line errors with
exit code 2, `mm init` and a required home, history queries, quiet on a closed pipe."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mm_dagster.alerts import load_alerts_yaml
from mm_dagster.alerts.service import AlertService
from mm_dagster.cli import main
from mm_dagster.cli.times import parse_time
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame
from mm_dagster.storage.alert_store import AlertStore

from .conftest import NOW, past_window

ROOT = Path(__file__).resolve().parent.parent
APP = "toy-app"
WINDOWS = [past_window(minutes) for minutes in (60, 50, 40)]  # oldest first


def store_window(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window, value: float, metrics: int = 2
) -> None:
    """One window's outputs of `APP`: a general_drift result and `metrics` metrics, endpoint-wide
    and for the segment country=DE."""
    status = ResultStatusApp.detected if value > 0.5 else ResultStatusApp.no_detection
    outputs = (
        [ModelMonitoringApplicationResult("general_drift", value, ResultKindApp.data_drift, status)],
        [ModelMonitoringApplicationMetric(f"metric_{i}", value + i) for i in range(metrics)],
    )
    mm.results.replace_window(
        APP, window, {endpoint.id: outputs}, segment_outputs={endpoint.id: {'{"country":"DE"}': outputs}}
    )


@pytest.fixture
def history(mm: Monitoring, endpoint: ModelEndpoint) -> ModelEndpoint:
    for value, window in zip((0.1, 0.2, 0.9), WINDOWS, strict=True):
        store_window(mm, endpoint, window, value)
    return endpoint


def run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`mm argv` in-process: exit code, stdout, stderr (argparse mistakes exit via SystemExit)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert err.startswith("mm: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


def mm_process(
    *argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mm_dagster.cli", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- mistakes: one line, naming the bad value, exit code 2 ---------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--config", "nosuch_module:config", "windows"], ["--config", "no module named 'nosuch_module'"]),
        (["--config", "apps.definitions:nope", "maintain"], ["has no attribute 'nope'"]),
        (["--config", "mm_dagster.core.errors:MonitoringError", "windows"], ["not a MonitoringConfig"]),
        (["--config", ":config", "windows"], ["expected module:attribute"]),
        (["results", "--app", "nosuch"], ["--app 'nosuch'", APP]),
        (["metrics", "--app", "nosuch"], ["--app 'nosuch'"]),
        (["metrics", "--name", "nosuch"], ["--name 'nosuch'", "metric_0"]),
        (["results", "--segment", "country=FR"], ["--segment 'country=FR'", "country=DE"]),
        (["results", "--endpoint", "nosuch"], ["unknown endpoint 'nosuch'"]),
        (["report", "nosuch"], ["unknown endpoint 'nosuch'"]),
        (["report", "fraud-model", "--app", "nosuch"], ["--app 'nosuch'", APP]),
        (["windows", "--hours", "-5"], ["--hours", "-5"]),
        (["windows", "--hours", "0"], ["--hours", "above 0"]),
        (["report", "fraud-model", "--hours", "soon"], ["--hours", "'soon'"]),
        (["results", "--since", "yesterday"], ["--since 'yesterday'", "6h"]),
        (["metrics", "--until", "2026-13-01"], ["--until '2026-13-01'"]),
        (
            ["results", "--since", "2026-11-20T12:00", "--until", "2026-11-20T11:00"],
            ["must be before --until"],
        ),
        (["maintain", "--retention-days", "-1"], ["--retention-days"]),
        (["serve", "--workers", "0"], ["--workers must be at least 1"]),
        (["resultz"], ["invalid choice: 'resultz'"]),
    ],
)
def test_mistakes_are_one_line_errors_with_exit_code_2(
    history: ModelEndpoint, argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert_one_line_error(code, err, *expected)
    assert out == ""


def test_alert_mistakes_are_one_line_errors(
    mm: Monitoring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    code, _, err = run(["--alerts-yaml", str(missing), "alerts", "list"], capsys)
    assert_one_line_error(code, err, str(missing), "no such file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("- {name: [\n")
    code, _, err = run(["--alerts-yaml", str(broken), "alerts", "list"], capsys)
    assert_one_line_error(code, err, str(broken), "malformed YAML")
    good = tmp_path / "alerts.yaml"
    good.write_text("- {name: drift, trigger: data-drift-detected, notifications: [{kind: log}]}\n")
    for action in ("events", "notifications", "reset", "resend"):
        code, _, err = run(["--alerts-yaml", str(good), "alerts", action, "nosuch"], capsys)
        assert_one_line_error(code, err, "unknown alert 'nosuch'", "drift")


def test_a_bad_config_in_a_real_process_prints_no_traceback(mm: Monitoring) -> None:
    done = mm_process("--config", "apps.definitions:nope", "windows")
    assert done.returncode == 2
    assert (
        done.stderr
        == "mm: --config 'apps.definitions:nope': module apps.definitions has no attribute 'nope'\n"
    )


# --- the home ------------------------------------------------------------------------------------


def test_a_missing_home_is_refused_and_not_created(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"MM_HOME": ""}
    done = mm_process("results", cwd=elsewhere, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"no monitoring home at {elsewhere / '.mm_home'}" in done.stderr
    assert "mm init" in done.stderr and done.stderr.count("\n") == 1
    assert not (elsewhere / ".mm_home").exists()
    done = mm_process("--home", str(tmp_path / "nowhere"), "endpoints", cwd=elsewhere, env=env)
    assert done.returncode == 2 and f"{tmp_path / 'nowhere'} (from --home)" in done.stderr
    assert not (tmp_path / "nowhere").exists()
    done = mm_process("serve", "--port", "0", cwd=elsewhere, env=env)  # serve needs a home too
    assert done.returncode == 2 and "no monitoring home" in done.stderr


def test_mm_init_creates_the_home_then_commands_work(tmp_path: Path) -> None:
    home = tmp_path / "deploy" / "home"
    done = mm_process("init", "--home", str(home), cwd=tmp_path, env={"MM_HOME": ""})
    assert done.returncode == 0, done.stderr
    assert f"created monitoring home at {home}" in done.stdout
    assert (home / "mm.db").is_file()
    done = mm_process("--home", str(home), "endpoints", cwd=tmp_path, env={"MM_HOME": ""})
    assert (done.returncode, done.stdout, done.stderr) == (0, "no endpoints\n", "")
    done = mm_process("results", "--json", cwd=tmp_path, env={"MM_HOME": str(home)})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    again = mm_process("--home", str(home), "init", cwd=tmp_path)
    assert again.returncode == 0 and f"monitoring home ready at {home}" in again.stdout


def test_home_option_overrides_mm_home(
    history: ModelEndpoint, isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    assert run(["init", "--home", str(other)], capsys)[0] == 0
    assert run(["--home", str(other), "endpoints"], capsys)[1] == "no endpoints\n"
    assert "fraud-model" in run(["endpoints"], capsys)[1]  # MM_HOME (the fixture's home)


# --- tables and --json ---------------------------------------------------------------------------


def test_results_table_names_endpoints_and_aligns_columns(
    history: ModelEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["results"], capsys)
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["window", "(UTC)", "endpoint", "app", "result", "segment", "status", "value"]
    latest = f"{WINDOWS[-1].start:%Y-%m-%d %H:%M}"
    assert lines == [
        f"{latest}  fraud-model  toy-app  general_drift  -           detected    0.9",
        f"{latest}  fraud-model  toy-app  general_drift  country=DE  detected    0.9",
    ]
    assert history.id not in out
    for column, value in (("endpoint", "fraud-model"), ("app", APP), ("result", "general_drift")):
        assert {line.index(value) for line in lines} == {header.index(column)}  # aligned under it
    assert {line.index("country=DE") for line in lines[1:]} == {header.index("segment")}
    assert {len(line) for line in lines} == {header.index("value") + len("value")}  # numbers right-aligned


def test_endpoints_table_and_json(endpoint: ModelEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["endpoints"], capsys)
    header, row = out.splitlines()
    assert code == 0 and header.startswith("endpoint     model  version  events  errors  last request (UTC)")
    assert row.split() == ["fraud-model", "fraud", "3", "0", "0", "-"]
    (line,) = run(["endpoints", "--json"], capsys)[1].splitlines()
    assert json.loads(line) | {"id": "?"} == {
        "id": "?",
        "name": "fraud-model",
        "model": "fraud",
        "version": "3",
        "events": 0,
        "errors": 0,
        "last_request": None,
    }


def test_json_lines_are_parseable_with_names_and_iso_times(
    history: ModelEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["metrics", "--json", "--segment", ""], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["name"], r["value"]) for r in rows] == [("metric_0", 0.9), ("metric_1", 1.9)]
    assert {r["endpoint"] for r in rows} == {"fraud-model"} and {r["endpoint_id"] for r in rows} == {
        history.id
    }
    assert datetime.fromisoformat(rows[0]["window_start"]) == WINDOWS[-1].start
    results = [json.loads(line) for line in run(["results", "--json"], capsys)[1].splitlines()]
    assert {(r["segment"], r["status"], r["kind"]) for r in results} == {
        ("", "detected", "data_drift"),
        ("country=DE", "detected", "data_drift"),
    }


def test_report_writes_the_page_for_the_default_or_a_named_app(
    history: ModelEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["report", "fraud-model"], ["report", "fraud-model", "--app", APP, "--hours", "6"]):
        code, out, err = run(argv, capsys)
        assert code == 0 and err == ""
        assert Path(out.strip().removeprefix("file://")).is_file()


# --- history queries -----------------------------------------------------------------------------


def test_a_range_lists_every_window_and_filters_narrow_it(
    history: ModelEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    since = f"{WINDOWS[0].start:%Y-%m-%dT%H:%M}"
    argv = ["results", "--json", "--since", since, "--name", "general_drift", "--segment", ""]
    rows = [json.loads(line) for line in run(argv, capsys)[1].splitlines()]
    assert [(datetime.fromisoformat(r["window_start"]), r["value"]) for r in rows] == [
        (WINDOWS[0].start, 0.1),
        (WINDOWS[1].start, 0.2),
        (WINDOWS[2].start, 0.9),
    ]
    until = f"{WINDOWS[2].start:%Y-%m-%d %H:%M}"
    argv = [
        "metrics",
        "--json",
        "--since",
        since,
        "--until",
        until,
        "--endpoint",
        "fraud-model",
        "--app",
        APP,
    ]
    rows = [json.loads(line) for line in run(argv, capsys)[1].splitlines()]
    assert len(rows) == 2 * 2 * 2  # 2 windows x 2 metrics x (endpoint-wide, country=DE)
    argv = ["metrics", "--json", "--since", since, "--name", "metric_1", "--segment", "country=DE"]
    rows = [json.loads(line) for line in run(argv, capsys)[1].splitlines()]
    assert [(r["segment"], r["value"]) for r in rows] == [
        ("country=DE", 1.1),
        ("country=DE", 1.2),
        ("country=DE", 1.9),
    ]
    code, out, _ = run(["results", "--since", since, "--segment", ""], capsys)
    assert code == 0 and [line.split()[:2] for line in out.splitlines()[1:]] == [
        [f"{w.start:%Y-%m-%d}", f"{w.start:%H:%M}"] for w in WINDOWS
    ]
    code, out, _ = run(["results", "--until", f"{WINDOWS[0].start:%Y-%m-%dT%H:%M}"], capsys)
    assert (code, out) == (0, "no results\n")


def test_times_are_iso_or_spans_before_now() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_time("6h", now, "--since") == now - timedelta(hours=6)
    assert parse_time("2d", now, "--since") == now - timedelta(days=2)
    assert parse_time("30m", now, "--since") == now - timedelta(minutes=30)
    assert parse_time("2026-11-20T10:00", now, "--since") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_time("2026-11-20 11:00+01:00", now, "--since") == datetime(2026, 11, 20, 10, tzinfo=UTC)


# --- a closed pipe -------------------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly(mm: Monitoring, isolated_home: Path) -> None:
    if shutil.which("head") is None:
        pytest.skip("needs the `head` command")
    endpoint = mm.create_endpoint("piped", reference=reference_frame(200, seed=1))
    for minutes in range(10, 130, 10):
        store_window(mm, endpoint, Window.containing(NOW - timedelta(minutes=minutes), 10), 0.3, metrics=100)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MM_HOME": str(isolated_home)}
    argv = [sys.executable, "-m", "mm_dagster.cli", "metrics", "--since", "2026-11-01"]
    for as_json in ([], ["--json"]):
        mm_cli = subprocess.Popen(
            [*argv, *as_json], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert mm_cli.stdout is not None and mm_cli.stderr is not None
        head = subprocess.run(["head", "-1"], stdin=mm_cli.stdout, capture_output=True, text=True, timeout=60)
        mm_cli.stdout.close()
        err = mm_cli.stderr.read().decode()
        assert mm_cli.wait(timeout=60) == 141, err
        assert err == ""  # no BrokenPipeError traceback, no "Exception ignored"
        assert head.stdout.count("\n") == 1 and head.stdout.strip()


# --- alerts --------------------------------------------------------------------------------------


def test_alerts_show_endpoint_names_and_reset_takes_them(
    endpoint: ModelEndpoint, mm: Monitoring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yaml_path = tmp_path / "alerts.yaml"
    yaml_path.write_text(
        "- {name: drift, trigger: data-drift-detected, reset_policy: manual, notifications: [{kind: log}]}\n"
    )
    window = WINDOWS[-1]
    detected = ModelMonitoringApplicationResult(
        "general_drift", 0.9, ResultKindApp.data_drift, ResultStatusApp.detected
    )
    report = AppWindowReport(app=APP, window=window, endpoint_names={endpoint.id: endpoint.name})
    report.outputs[endpoint.id] = ([detected], [])
    AlertService(AlertStore(mm.engine), load_alerts_yaml(yaml_path)).record_report(report)
    args = ["--alerts-yaml", str(yaml_path), "alerts"]
    code, out, _ = run([*args, "list"], capsys)
    header, row = out.splitlines()
    assert code == 0 and header.split()[:3] == ["alert", "state", "severity"]
    assert row.split()[:2] == ["drift", "active"] and row.endswith(f"fraud-model.{APP}.result.general_drift")
    assert endpoint.id not in out
    (listed,) = [json.loads(line) for line in run([*args, "list", "--json"], capsys)[1].splitlines()]
    assert listed["active_entities"] == [f"{endpoint.id}.{APP}.result.general_drift"]  # as stored
    code, out, _ = run([*args, "events", "drift"], capsys)
    assert code == 0 and out.splitlines()[1].split() == [
        *f"{window.start:%Y-%m-%d %H:%M}".split(),
        "data-drift-detected",
        "fraud-model",
        APP,
        "general_drift",
        "-",
        "detected",
        "0.9",
    ]
    entity = f"fraud-model.{APP}.result.general_drift"  # as the table shows it
    assert (
        run([*args, "reset", "drift", "--entity", entity], capsys)[1]
        == "reset 1 active entity state(s) of drift\n"
    )


def test_a_home_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("not a folder")
    code, _, err = run(["--home", str(blocker), "endpoints"], capsys)
    assert_one_line_error(code, err, str(blocker), "is not a directory")
    code, _, err = run(["init", "--home", str(blocker)], capsys)
    assert_one_line_error(code, err, str(blocker), "a file is in the way")
