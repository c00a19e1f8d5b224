import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, materialize

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.windows import Window, validate_base_period
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame

from .file_scheduling import ClusterFilesTogether, longest_first
from .moto_s3 import MotoS3, moto_s3_server

warnings.filterwarnings("ignore", module="dagster")

# The tests' "now": a fixed instant, aligned to every base_period below a day, after the Dagster
# partitions' start (2026-11-01) and before the real now, so `materialize` accepts its windows and
# no test depends on the wall clock crossing a window boundary while it runs.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# Every base_period `validate_base_period` accepts.
BASE_PERIODS = [bp for bp in range(1, 1441) if 1440 % bp == 0 and (60 % bp == 0 or bp % 60 == 0)]
assert all(validate_base_period(bp) == bp for bp in BASE_PERIODS)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> ClusterFilesTogether:
    return ClusterFilesTogether(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    longest_first(items)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MM_HOME; no test reads the developer's environment."""
    for name in (
        "MM_DATABASE_URL",
        "MM_EVENTS_ROOT",
        "MM_ARTIFACTS_ROOT",
        "MM_REFERENCES_ROOT",
        "MM_SPOOL_DIR",
        "MM_UI_URL",
        "MM_DAGSTER_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "mm_home"
    monkeypatch.setenv("MM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server in its own process, one per test process (tests use their own buckets)."""
    pytest.importorskip("moto.server", reason="moto[server] is a test dependency (pip install '.[test]')")
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def s3(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """The S3 server, with this process's environment pointing pyarrow and boto3 at it."""
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    return moto_s3


@pytest.fixture
def mm(isolated_home: Path) -> Iterator[Monitoring]:
    with Monitoring(home=str(isolated_home), clock=fixed_clock(NOW)) as monitoring:
        yield monitoring


@pytest.fixture
def endpoint(mm: Monitoring) -> ModelEndpoint:
    return mm.create_endpoint(
        "fraud-model",
        reference=reference_frame(5000, seed=1),
        label_names=["prediction"],
        model_name="fraud",
        model_version="3",
        model_uri="s3://models/fraud/3",
    )


def past_window(minutes_ago: int = 60, base_period: int = 10) -> Window:
    """The window some minutes before `NOW` (closed, and a Dagster partition)."""
    return Window.containing(NOW - timedelta(minutes=minutes_ago), base_period)


@pytest.fixture
def window() -> Iterator[Window]:
    yield past_window()


def materialize_window(
    defs: Definitions, key: str, instance: DagsterInstance, home: str, raise_on_error: bool = True
) -> ExecuteInProcessResult:
    """All assets of `defs` for one window partition, as the UI's "Materialize" does."""
    return materialize(
        list(defs.assets),
        partition_key=key,
        instance=instance,
        resources={"mm": MonitoringResource(home=home)},
        raise_on_error=raise_on_error,
    )
