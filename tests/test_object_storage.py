"""Events, references and artifacts on S3 (moto's server in its own process), results in a
database: everything lands in the bucket and nothing is written under the local MM_HOME."""

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import EnvVar, instance_for_test, materialize

from apps.evidently_drift import EvidentlyDataDriftApplication
from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.errors import MonitoringError
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.events.maintenance import MaintenancePolicy
from mm_dagster.monitoring import Monitoring, StorageSettings
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from mm_dagster.storage.files import StorageRoot

from .conftest import NOW, past_window
from .moto_s3 import MotoS3
from .postgres import fresh_database

pytestmark = pytest.mark.slow  # a server process, Evidently and a Dagster run

ENDPOINTS = ("fraud", "churn", "pricing")


class ArtifactWriter(ModelMonitoringApplicationBase):
    """Logs every kind of artifact: a text body, bytes, a copy of a local file and a dataset."""

    NAME = "artifact-writer"

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        ctx = monitoring_context
        ctx.log_artifact("summary", body=f"rows={len(ctx.sample_df)}")
        ctx.log_artifact("raw", body=b"\x00\x01\x02", format="bin")
        made_here = self.scratch / f"{ctx.endpoint_id}.csv"
        ctx.sample_df.head(3).to_csv(made_here, index=False)
        ctx.log_artifact("copied", local_path=made_here)
        ctx.log_dataset("head", ctx.sample_df.head(5), unique_per_endpoint=True)
        return {"rows": float(len(ctx.sample_df))}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.scale)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()
        yield f"sqlite:///{tmp_path}/db/mm.db"
        return
    with fresh_database("mm_objects") as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def bucket(s3: MotoS3) -> str:
    return s3.create_bucket()


@pytest.fixture
def on_s3(
    s3: MotoS3, bucket: str, database_url: str, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> StorageSettings:
    """Every root on S3 and the spool elsewhere, from the environment as a deployment sets them."""
    for name, prefix in (("EVENTS", "events"), ("REFERENCES", "references"), ("ARTIFACTS", "artifacts")):
        monkeypatch.setenv(f"MM_{name}_ROOT", f"s3://{bucket}/{prefix}")
    monkeypatch.setenv("MM_DATABASE_URL", database_url)
    monkeypatch.setenv("MM_SPOOL_DIR", str(isolated_home.parent / "spool"))
    settings = StorageSettings.resolve()
    assert settings.home == str(isolated_home) and not isolated_home.exists()
    return settings


def test_everything_on_s3_and_nothing_under_mm_home(
    on_s3: StorageSettings, s3: MotoS3, bucket: str, isolated_home: Path, tmp_path: Path
) -> None:
    window = past_window(60)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    evidently = EvidentlyDataDriftApplication(
        uuid.uuid4(), tmp_path / "evidently", sample_rows=1000, snapshots="always"
    )
    apps = [HistogramDataDriftApplication(), ArtifactWriter(scratch), evidently]
    with Monitoring(clock=fixed_clock(NOW)) as mm:
        ids = {
            name: mm.create_endpoint(
                name, reference=reference_frame(3000, seed=i), label_names=["prediction"]
            ).id
            for i, name in enumerate(ENDPOINTS)
        }
        # Two batches per endpoint straight in, one more through a serving process's recorder.
        for i, name in enumerate(ENDPOINTS):
            shape = TrafficShape(mean_shift=2, drifted_features=2) if name == "fraud" else TrafficShape()
            mm.record_events(name, traffic_frame(400, window.start, window.end, shape, seed=10 + i))
            mm.record_events(name, traffic_frame(300, window.start, window.end, shape, seed=20 + i))
        recorder = mm.recorder(max_seconds=0.1, handle_signals=False)
        for n in range(50):
            recorder.record(
                "churn",
                {"f0": 0.1 * n, "f1": 0.0, "f2": 1.0, "f3": 2.0, "c0": "a"},
                {"prediction": 1.0},
                latency_us=1000,
                timestamp=window.start + timedelta(seconds=n),
            )
        assert recorder.flush(timeout=30)
        recorder.close()
        reports = mm.run_window(apps, window)
        report_uri = mm.write_endpoint_report("fraud", hours=2, now=NOW)
        maintained = mm.maintain(MaintenancePolicy(), now=NOW)
        events = mm.read_window(window)
        artifacts = {a["key"]: a["uri"] for a in mm.artifacts.list()}
        results = mm.results.results(app="evidently-data-drift")

    assert not any(r.failures for r in reports), [r.failures for r in reports]
    assert {ep: len(frame) for ep, frame in events.items()} == {
        ids["fraud"]: 700,
        ids["churn"]: 750,
        ids["pricing"]: 700,
    }
    assert maintained.compacted  # the small files of every endpoint, merged on S3 slot by slot
    assert all(c.files_written == 1 and c.endpoints == 3 for c in maintained.compacted)
    assert {r.endpoint_id for r in results} == set(ids.values())  # Evidently read the references

    keys = s3.keys(bucket)
    assert {f"references/{i}.parquet" for i in ids.values()} <= set(keys)
    event_files = [k for k in keys if k.startswith("events/date=") and k.endswith(".parquet")]
    assert len(event_files) >= 1 and "events/_mm_event_store.json" in keys
    assert any(k.rsplit("/", 1)[-1].startswith("slot-") for k in event_files)
    assert not [k for k in keys if k.rsplit("/", 1)[-1].startswith(".")]  # no temporary objects
    for endpoint_id in ids.values():
        for key in (
            f"artifacts/artifact-writer/summary-{endpoint_id}.txt",
            f"artifacts/artifact-writer/raw-{endpoint_id}.bin",
            f"artifacts/artifact-writer/copied-{endpoint_id}.csv",
            f"artifacts/artifact-writer/head-{endpoint_id}.parquet",
            f"artifacts/evidently-data-drift/evidently-report-{endpoint_id}.html",
        ):
            assert key in keys
            assert artifacts[key.removeprefix("artifacts/").rsplit(".", 1)[0]] == f"s3://{bucket}/{key}"
    fraud = ids["fraud"]
    assert s3.read(bucket, f"artifacts/artifact-writer/summary-{fraud}.txt") == b"rows=700"
    assert s3.read(bucket, f"artifacts/artifact-writer/raw-{fraud}.bin") == b"\x00\x01\x02"
    head = pq.read_table(pa.BufferReader(s3.read(bucket, f"artifacts/artifact-writer/head-{fraud}.parquet")))
    assert head.num_rows == 5
    assert report_uri.startswith(f"s3://{bucket}/artifacts/histogram-data-drift/endpoint-report-fraud-")
    assert "artifacts/histogram-data-drift/plotly.min.js" in keys
    assert b"<html" in s3.read(bucket, report_uri.removeprefix(f"s3://{bucket}/")).lower()

    assert not isolated_home.exists(), sorted(str(p) for p in isolated_home.rglob("*"))
    assert not (isolated_home.parent / "spool").exists()  # the store was up: nothing spooled


class ReferenceReader(ModelMonitoringApplicationBase):
    """Reports how many rows of the endpoint's stored reference sample it could read."""

    NAME = "reference-reader"

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        reference = monitoring_context.reference_df
        return {"reference_rows": float(0 if reference is None else len(reference))}


def test_a_dagster_run_with_the_resource_on_s3(
    on_s3: StorageSettings, s3: MotoS3, bucket: str, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resource's fields (EnvVar or literal) put a Dagster run's stores on S3 too."""
    window = past_window(60)
    references = f"s3://{bucket}/refs-of-runs"
    monkeypatch.setenv("RUN_REFERENCES", references)
    with Monitoring(references_root=references, clock=fixed_clock(NOW)) as mm:
        endpoint = mm.create_endpoint(
            "m", reference=reference_frame(2000, seed=1), label_names=["prediction"]
        )
        mm.record_events("m", traffic_frame(500, window.start, window.end, seed=3))
    resource = MonitoringResource(
        database_url=on_s3.database_url,
        events_root=on_s3.events_root,
        artifacts_root=on_s3.artifacts_root,
        references_root=EnvVar("RUN_REFERENCES"),
    )
    defs = build_definitions(
        MonitoringConfig(apps=[ReferenceReader()], partitions_start="2026-11-01"), resource=resource
    )
    with instance_for_test() as instance:
        result = materialize(
            list(defs.assets), partition_key=window.key, instance=instance, resources={"mm": resource}
        )
    assert result.success
    with Monitoring() as mm:
        (metric,) = mm.results.metrics(endpoint.id, "reference-reader")
    assert metric.value == 2000  # the run read the reference from the EnvVar's root
    assert f"refs-of-runs/{endpoint.id}.parquet" in s3.keys(bucket)
    assert not isolated_home.exists()


def test_roots_take_the_endpoint_in_the_uri(s3: MotoS3, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`s3://bucket/prefix?endpoint_override=...` reaches the store without AWS_ENDPOINT_URL."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    root = StorageRoot.parse(s3.uri(bucket, "refs"))
    assert (root.scheme, root.path) == ("s3", f"{bucket}/refs")
    root.write_whole(root.join("x.txt"), lambda out: out.write(b"hello"))
    assert root.uri(root.join("x.txt")) == f"s3://{bucket}/refs/x.txt"
    assert s3.read(bucket, "refs/x.txt") == b"hello"


def test_a_failed_write_leaves_no_object(s3: MotoS3, bucket: str) -> None:
    root = StorageRoot.parse(f"s3://{bucket}/a")

    def half_then_fail(out: pa.NativeFile) -> None:
        out.write(b"half")
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        root.write_whole(root.join("file.bin"), half_then_fail)
    root.write_whole(root.join("kept.bin"), lambda out: out.write(b"old"))
    with pytest.raises(RuntimeError, match="writer died"):
        root.write_whole(root.join("kept.bin"), half_then_fail)
    assert s3.keys(bucket) == ["a/kept.bin"] and s3.read(bucket, "a/kept.bin") == b"old"


def test_artifacts_on_object_storage_have_no_local_folder(s3: MotoS3, bucket: str) -> None:
    with Monitoring(
        home="/nonexistent-home", database_url="sqlite://", artifacts_root=f"s3://{bucket}/art"
    ) as mm:
        with pytest.raises(MonitoringError, match="object storage, not a local folder"):
            mm.artifacts.app_dir("my-app")
        with pytest.raises(MonitoringError, match="artifact key"):
            mm.artifacts.log("my-app", "../escape", body="x")
        assert mm.artifacts.log("my-app", "k", body="v") == f"s3://{bucket}/art/my-app/k.txt"


def test_bad_roots_are_named() -> None:
    with pytest.raises(MonitoringError, match=r"storage root nosuch://host/x: Unrecognized") as raised:
        StorageRoot.parse("nosuch://user:secret@host/x?token=1")
    assert "secret" not in str(raised.value) and "token" not in str(raised.value)
    with pytest.raises(MonitoringError, match=r"storage root s3://bucket/x: Unexpected query parameter"):
        StorageRoot.parse("s3://bucket/x?bogus=1")
    with pytest.raises(MonitoringError, match=r"spool_dir .* must be a local directory"):
        StorageSettings.resolve(environ={"MM_SPOOL_DIR": "s3://bucket/spool"})


def test_local_roots_are_unchanged(tmp_path: Path) -> None:
    with Monitoring(home=str(tmp_path / "h"), references_root=str(tmp_path / "refs")) as mm:
        ep = mm.create_endpoint("m", reference=reference_frame(500, seed=1), label_names=["prediction"])
        assert (tmp_path / "refs" / f"{ep.id}.parquet").exists()
        assert mm.references.uri(ep.id) == (tmp_path / "refs" / f"{ep.id}.parquet").as_uri()
        loaded = mm.references.load(ep.id)
        assert isinstance(loaded, pd.DataFrame) and len(loaded) == 500
        uri = mm.artifacts.log("my-app", "k", body="v")
        assert uri == (tmp_path / "h" / "artifacts" / "my-app" / "k.txt").as_uri()


def test_references_root_and_spool_dir_settings(tmp_path: Path) -> None:
    home = tmp_path / "h"
    defaults = StorageSettings.resolve(environ={"MM_HOME": str(home)})
    assert (defaults.references_root, defaults.spool_dir) == (f"{home}/references", f"{home}/spool")
    env = {"MM_HOME": str(home), "MM_REFERENCES_ROOT": "s3://b/refs", "MM_SPOOL_DIR": str(tmp_path / "sp")}
    from_env = StorageSettings.resolve(environ=env)
    assert (from_env.references_root, from_env.spool_dir) == ("s3://b/refs", str(tmp_path / "sp"))
    explicit = StorageSettings.resolve(environ=env, references_root="gs://other/refs")
    assert explicit.references_root == "gs://other/refs"
