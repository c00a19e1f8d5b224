"""Guards on the project's structure: no process-global mutable state, no private Dagster imports,
composable definitions, and runtime state owned by the Dagster resource."""

import dataclasses
import enum
import importlib
import logging
import pkgutil
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from dagster import Definitions, EnvVar, build_sensor_context, instance_for_test

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.thresholds import Thresholds
from mm_dagster.core.windows import Window, split_range
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring, StorageSettings
from mm_dagster.schemas import ResultStatusApp
from mm_dagster.simulation import reference_frame, traffic_frame

from .conftest import past_window

ROOT = Path(__file__).resolve().parents[1]

# Values that cannot change after import: constants, compiled patterns, read-only mappings,
# enums, type aliases, functions and classes, loggers, and SQLAlchemy schema objects (the table
# definitions are declarations; rows live in the database).
IMMUTABLE = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
    types.MappingProxyType,
    types.GenericAlias,
    types.UnionType,
    str,
    bytes,
    int,
    float,
    bool,
    np.generic,  # numpy scalars
    type(None),
    datetime,
    timedelta,
    tzinfo,
    re.Pattern,
    enum.Enum,
    logging.Logger,
    logging.LoggerAdapter,
    sa.Table,
    sa.MetaData,
    sa.types.TypeEngine,
)


def _immutable(value: object) -> bool:
    if callable(value) and hasattr(value, "py_func"):  # a numba-compiled function
        return True
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        frozen = value.__dataclass_params__.frozen  # type: ignore[attr-defined]
        return bool(frozen) and all(_immutable(getattr(value, f.name)) for f in dataclasses.fields(value))
    return type(value).__module__ == "typing" or isinstance(value, IMMUTABLE)


def _library_modules() -> Iterator[types.ModuleType]:
    for info in pkgutil.walk_packages([str(ROOT / "mm_dagster")], "mm_dagster."):
        yield importlib.import_module(info.name)


def test_no_module_level_mutable_state() -> None:
    offenders = []
    for module in _library_modules():
        for name, value in vars(module).items():
            if name.startswith("__") or getattr(value, "__module__", module.__name__) != module.__name__:
                continue
            if not _immutable(value):
                offenders.append(f"{module.__name__}.{name} ({type(value).__name__})")
    assert offenders == []


def test_no_private_dagster_imports() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    private = re.compile(r"\bdagster\._")
    hits = [
        f"{path}:{n}"
        for path in tracked
        for n, line in enumerate((ROOT / path).read_text().splitlines(), start=1)
        if private.search(line) and path != "tests/test_structure.py"
    ]
    assert hits == []


# -- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, ResultStatusApp.no_detection),
        (0.29, ResultStatusApp.no_detection),
        (0.3, ResultStatusApp.potential_detection),
        (0.5, ResultStatusApp.detected),
        (1.0, ResultStatusApp.detected),
    ],
)
def test_thresholds_classify_at_or_above_each_bound(value: float, expected: ResultStatusApp) -> None:
    assert Thresholds(0.3, 0.5).status(value) == expected


@pytest.mark.parametrize(
    ("potential", "detected", "below_one"),
    [(0.5, 0.5, False), (0.6, 0.5, False), (0.0, 0.5, False), (0.5, 1.5, False), (0.5, 1.0, True)],
)
def test_thresholds_reject_bounds_out_of_order(potential: float, detected: float, below_one: bool) -> None:
    with pytest.raises(MonitoringError, match=r"error rate thresholds must satisfy 0 < potential"):
        Thresholds(potential, detected, what="error rate", below_one=below_one)


def test_thresholds_reject_non_numbers() -> None:
    with pytest.raises(MonitoringError, match="thresholds must satisfy"):
        Thresholds("0.3", 0.5)  # type: ignore[arg-type]  # what a YAML typo hands over
    with pytest.raises(MonitoringError, match="thresholds must satisfy"):
        Thresholds(float("nan"), 0.5)


def test_split_range_cuts_a_partition_range_into_windows() -> None:
    start = datetime.fromisoformat("2026-11-20T10:00:00+00:00")
    windows = split_range(start, start + timedelta(minutes=30), 3)
    assert windows == [Window.containing(start + timedelta(minutes=10 * i), 10) for i in range(3)]
    with pytest.raises(MonitoringError, match="whole-minute"):
        split_range(start, start + timedelta(minutes=10), 3)


# -- settings and the resource -------------------------------------------------------------------


def test_settings_resolve_explicit_then_environment_then_defaults(tmp_path: Path) -> None:
    env = {"MM_HOME": str(tmp_path / "h"), "MM_EVENTS_ROOT": "s3://bucket/events"}
    settings = StorageSettings.resolve(artifacts_root=str(tmp_path / "art"), environ=env)
    assert settings.home == str(tmp_path / "h")
    assert settings.database_url == f"sqlite:///{tmp_path}/h/mm.db"
    assert settings.events_root == "s3://bucket/events"
    assert settings.artifacts_root == str(tmp_path / "art")
    assert StorageSettings.resolve(environ={}).home == str(Path(".mm_home").absolute())


def test_resource_reads_the_environment_when_a_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Definitions load in one process and run in another: the run's environment decides."""
    defs = build_definitions(
        MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    )
    run_home = tmp_path / "run-home"
    monkeypatch.setenv("MM_HOME", str(run_home))
    window = past_window(60)
    with Monitoring() as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        mm.record_events("m", traffic_frame(100, window.start, window.end, seed=1))
    job = defs.resolve_job_def("mm_monitoring_job")
    with instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, partition_key=window.key).success
    with Monitoring(home=str(run_home)) as mm:
        assert len(mm.results.results(app="histogram-data-drift")) == 3


def test_resource_fields_take_dagster_env_vars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/from-env.db"
    monkeypatch.setenv("MY_MM_DATABASE", url)
    resource = MonitoringResource(home=str(tmp_path / "h"), database_url=EnvVar("MY_MM_DATABASE"))
    defs = build_definitions(
        MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01"),
        resource=resource,
    )
    with (
        instance_for_test() as instance,
        build_sensor_context(instance=instance, definitions=defs, resources={"mm": resource}) as context,
    ):
        defs.resolve_sensor_def("mm_controller").evaluate_tick(context)
        assert context.resources.mm.monitoring.settings.database_url == url
    assert (tmp_path / "from-env.db").exists()


def test_resource_outside_dagster_says_how_to_use_it() -> None:
    with pytest.raises(MonitoringError, match="not set up"):
        _ = MonitoringResource().monitoring


def test_resource_base_period_must_match_the_config() -> None:
    with pytest.raises(MonitoringError, match="base_period"):
        build_definitions(
            MonitoringConfig(apps=[HistogramDataDriftApplication()], base_period=5),
            resource=MonitoringResource(base_period=10),
        )


# -- two configs in one code location ------------------------------------------------------------


def _prefixed(prefix: str, home: Path) -> Definitions:
    config = MonitoringConfig(
        apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01", prefix=prefix
    )
    return build_definitions(config, resource=MonitoringResource(home=str(home)))


def test_two_configs_compose_in_one_code_location(tmp_path: Path) -> None:
    defs = Definitions.merge(_prefixed("fraud", tmp_path / "fraud"), _prefixed("churn", tmp_path / "churn"))
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        f"mm/{team}/{name}"
        for team in ("fraud", "churn")
        for name in (
            "window_events",
            "analysis/shard_1_of_1",
            "histogram-data-drift/histogram-data-drift_results",
            "histogram-data-drift/histogram-data-drift_metrics",
        )
    }
    assert {s.name for s in repo.sensor_defs} == {
        "mm_fraud_controller",
        "mm_fraud_alert_delivery",
        "mm_churn_controller",
        "mm_churn_alert_delivery",
    }
    assert {"mm_fraud_monitoring_job", "mm_churn_monitoring_job"} <= {j.name for j in repo.get_all_jobs()}
    assert set(repo.get_top_level_resources()) == {"mm_fraud", "mm_churn"}

    window = past_window(60)
    with Monitoring(home=str(tmp_path / "fraud")) as mm:
        mm.create_endpoint("fraud-model", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        mm.record_events("fraud-model", traffic_frame(100, window.start, window.end, seed=2))
    job = defs.resolve_job_def("mm_fraud_monitoring_job")
    with instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, partition_key=window.key).success
    with Monitoring(home=str(tmp_path / "fraud")) as fraud, Monitoring(home=str(tmp_path / "churn")) as churn:
        names = {r.name for r in fraud.results.results()}
        assert names == {"general_drift", "feature_drift", "prediction_drift"}
        assert churn.results.results() == []


def test_prefix_is_validated() -> None:
    with pytest.raises(MonitoringError, match="prefix"):
        MonitoringConfig(apps=[HistogramDataDriftApplication()], prefix="Bad Prefix")


def test_recording_events_does_not_import_the_heavy_libraries() -> None:
    """A serving process imports `mm_dagster.monitoring` to record events: it must not pay for
    scikit-learn, SciPy's statistics or Evidently (seconds of import, hundreds of MB)."""
    code = (
        "import sys, mm_dagster.monitoring, mm_dagster.applications; "
        "print(sorted(m for m in ('sklearn', 'scipy.stats', 'evidently') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
