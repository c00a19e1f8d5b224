"""HTTP ingestion against `mm serve` on loopback: bodies, receipts, errors, limits and tokens."""

import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from mm_dagster.core.model_task import TaskKind
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame
from mm_dagster.storage.api_tokens import PROJECT_SCOPE, ApiTokenStore, endpoint_scope

from .labelled_model import BINARY, OUTPUTS, binary_frame
from .service_server import running_service

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def around_now() -> Window:
    now = datetime.now(UTC)
    return Window(now - timedelta(hours=1), now + timedelta(hours=1))


def events(rows: int, prefix: str, seed: int = 3) -> pd.DataFrame:
    frame = reference_frame(rows, seed=seed)
    frame["timestamp"] = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=30)
    frame["request_id"] = [f"{prefix}-{i}" for i in range(rows)]
    frame["latency_us"] = 1500
    return frame


def arrow_body(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def parquet_body(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def json_body(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", date_format="iso").encode()


def stored(home: Path, endpoint: str) -> pd.DataFrame:
    with Monitoring(home=str(home)) as mm:
        endpoint_id = mm.get_endpoint(endpoint).id
        return mm.read_window(around_now()).get(endpoint_id, pd.DataFrame())


class Deployment:
    def __init__(self, home: Path, base: str, secrets: dict[str, str]) -> None:
        self.home = home
        self.base = base
        self.secrets = secrets

    def post(
        self,
        endpoint: str,
        kind: str,
        body: bytes,
        token: str | None = "project",
        path: str = "events",
        **headers: str,
    ) -> httpx.Response:
        """POST `body` to the endpoint's `path` with the named token (None: only `headers`)."""
        sent = {"Content-Type": kind, **headers}
        if token is not None:
            sent["Authorization"] = f"Bearer {self.secrets[token]}"
        return httpx.post(f"{self.base}/v1/endpoints/{endpoint}/{path}", content=body, headers=sent)


def deploy(home: Path) -> dict[str, str]:
    with Monitoring(home=str(home)) as mm:
        mm.create_endpoint("fraud", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        mm.create_endpoint("other", reference=reference_frame(2000, seed=2), label_names=["prediction"])
        mm.create_endpoint(
            "scorer",
            reference=binary_frame(2000, seed=1),
            label_names=OUTPUTS[TaskKind.binary],
            task=BINARY,
        )
        tokens = ApiTokenStore(mm.engine)
        secrets = {
            "project": tokens.create("ci", PROJECT_SCOPE).secret,
            "fraud": tokens.create("fraud-writer", endpoint_scope("fraud")).secret,
            "revoked": tokens.create("old", PROJECT_SCOPE).secret,
        }
        tokens.revoke("old")
    return secrets


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("ingest") / "mm_home"
    home.mkdir()
    secrets = deploy(home)
    with running_service(home) as base:
        yield Deployment(home, base, secrets)


@pytest.mark.parametrize(
    ("kind", "encode"),
    [("application/json", json_body), (ARROW, arrow_body), (PARQUET, parquet_body)],
)
def test_every_body_format_is_stored_and_readable(service: Deployment, kind: str, encode: object) -> None:
    frame = events(50, prefix=kind.rsplit("/", 1)[-1])
    response = service.post("fraud", kind, encode(frame))  # type: ignore[operator]
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["received"] == receipt["stored"] == 50 and not receipt["duplicate"]
    assert receipt["windows"] == [Window.containing(frame["timestamp"].iloc[0], 10).key]
    back = stored(service.home, "fraud")
    mine = back[back["request_id"].str.startswith(frame["request_id"].iloc[0].split("-")[0] + "-")]
    assert len(mine) == 50
    assert sorted(mine["f0"]) == pytest.approx(sorted(frame["f0"]))


@pytest.mark.parametrize("encode", [arrow_body, parquet_body])
def test_categorical_columns_arrive_as_their_values(service: Deployment, encode: object) -> None:
    frame = events(8, prefix=f"cat{encode.__name__}").astype({"c0": "category"})  # type: ignore[attr-defined]
    response = service.post("fraud", ARROW if encode is arrow_body else PARQUET, encode(frame))  # type: ignore[operator]
    assert response.status_code == 202, response.text
    back = stored(service.home, "fraud").set_index("request_id")
    assert back.loc[frame["request_id"], "c0"].tolist() == frame["c0"].astype(str).tolist()


def test_json_object_body_with_numeric_timestamps_and_their_unit(service: Deployment) -> None:
    frame = events(5, prefix="unit").drop(columns="timestamp")
    seconds = time.time() - 10
    records = [{**r, "timestamp": seconds} for r in frame.to_dict(orient="records")]
    body = json.dumps({"records": records, "timestamp_unit": "s"}).encode()
    assert service.post("fraud", "application/json", body).status_code == 202
    without_unit = json.dumps(records).encode()
    refused = service.post("fraud", "application/json", without_unit)
    assert refused.status_code == 422 and "timestamp" in refused.json()["detail"]
    query = httpx.post(
        f"{service.base}/v1/endpoints/fraud/events?timestamp_unit=s",
        content=without_unit,
        headers={"Authorization": f"Bearer {service.secrets['project']}", "Content-Type": "application/json"},
    )
    assert query.status_code == 202, query.text


def test_a_bad_row_is_refused_naming_field_and_row_and_nothing_is_stored(service: Deployment) -> None:
    frame = events(10, prefix="bad").astype({"f1": object})
    frame.loc[7, "f1"] = "not a number"
    before = len(stored(service.home, "fraud"))
    for kind, body in (
        ("application/json", json_body(frame)),
        (PARQUET, parquet_body(frame.astype({"f1": str}))),
    ):
        response = service.post("fraud", kind, body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "'f1'" in detail and "row 7" in detail and "'fraud'" in detail
    assert len(stored(service.home, "fraud")) == before


def test_unreadable_bodies_unknown_types_and_unknown_endpoints(service: Deployment) -> None:
    assert service.post("fraud", "application/json", b"{not json").status_code == 400
    assert service.post("fraud", ARROW, b"not arrow").status_code == 400
    assert service.post("fraud", PARQUET, b"not parquet").status_code == 400
    assert service.post("fraud", "application/json", b"[1, 2]").json()["detail"].startswith("record 0")
    unsupported = service.post("fraud", "text/csv", b"a,b\n1,2\n")
    assert unsupported.status_code == 415 and "text/csv" in unsupported.json()["detail"]
    assert service.post("nobody", "application/json", b"[]").status_code == 404


def test_an_idempotency_key_stores_a_retried_batch_once(service: Deployment) -> None:
    frame = events(20, prefix="retry")
    first = service.post("fraud", ARROW, arrow_body(frame), **{"Idempotency-Key": "batch-1"})
    again = service.post("fraud", ARROW, arrow_body(frame), **{"Idempotency-Key": "batch-1"})
    assert first.json()["stored"] == 20 and not first.json()["duplicate"]
    assert again.status_code == 202 and again.json()["stored"] == 0 and again.json()["duplicate"]
    back = stored(service.home, "fraud")
    assert (back["request_id"].str.startswith("retry-")).sum() == 20


def test_labels_are_stored_and_matched_to_their_predictions(service: Deployment) -> None:
    frame = binary_frame(30, seed=4)
    served = frame.drop(columns="label").assign(
        timestamp=pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=20),
        request_id=[f"lab-{i}" for i in range(30)],
    )
    assert service.post("scorer", ARROW, arrow_body(served)).status_code == 202
    labels = pd.DataFrame(
        {"request_id": [f"lab-{i}" for i in range(30)] + ["later"], "label": [*frame["label"], 1.0]}
    )
    response = service.post("scorer", "application/json", json_body(labels), path="labels")
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert (receipt["stored"], receipt["matched"], receipt["unmatched"]) == (31, 30, 1)
    assert receipt["unmatched_ids"] == ["later"] and len(receipt["windows"]) == 1
    back = stored(service.home, "scorer")
    assert back.set_index("request_id")["label"].loc[[f"lab-{i}" for i in range(30)]].tolist() == list(
        frame["label"]
    )
    bad = service.post("scorer", "application/json", b'[{"request_id": "x", "label": null}]', path="labels")
    assert bad.status_code == 422 and "'label'" in bad.json()["detail"]


@pytest.mark.parametrize("path", ["events", "labels"])
def test_every_write_refuses_missing_wrong_revoked_and_other_endpoint_tokens(
    service: Deployment, path: str
) -> None:
    url = f"{service.base}/v1/endpoints/scorer/{path}"
    body = b"[]"
    json_type = {"Content-Type": "application/json"}
    wrong = "mmt_" + "A" * 43
    cases = {
        "missing": ({}, 401),
        "not bearer": ({"Authorization": f"Basic {service.secrets['project']}"}, 401),
        "malformed": ({"Authorization": "Bearer nope"}, 401),
        "wrong": ({"Authorization": f"Bearer {wrong}"}, 401),
        "revoked": ({"Authorization": f"Bearer {service.secrets['revoked']}"}, 401),
        "other endpoint": ({"Authorization": f"Bearer {service.secrets['fraud']}"}, 403),
    }
    for case, (headers, code) in cases.items():
        response = httpx.post(url, content=body, headers={**json_type, **headers})
        assert response.status_code == code, (case, response.text)
        assert service.secrets["project"] not in response.text and wrong not in response.text
    other_unknown = httpx.post(
        f"{service.base}/v1/endpoints/nobody/{path}",
        content=body,
        headers={**json_type, "Authorization": f"Bearer {service.secrets['fraud']}"},
    )
    assert other_unknown.status_code == 403  # a scoped token learns nothing of other endpoints
    allowed = httpx.post(
        f"{service.base}/v1/endpoints/fraud/events",
        content=json_body(events(1, prefix=f"scoped-{path}")),
        headers={**json_type, "Authorization": f"Bearer {service.secrets['fraud']}"},
    )
    assert allowed.status_code == 202


def test_secrets_are_neither_logged_nor_stored_in_clear(service: Deployment) -> None:
    for secret in service.secrets.values():  # every token used at least once, right or wrong
        service.post("fraud", "application/json", b"[]", token=None, Authorization=f"Bearer {secret}")
    log = (service.home / "service.log").read_text()
    assert "/v1/endpoints/fraud/events" in log  # the access log is there, and holds no secret
    connection = sqlite3.connect(service.home / "mm.db")
    try:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(str(row) for t in tables for row in connection.execute(f"SELECT * FROM {t}"))
        used = connection.execute("SELECT last_used_at FROM mm_api_tokens WHERE name='ci'").fetchone()[0]
    finally:
        connection.close()
    assert used is not None
    for secret in service.secrets.values():
        assert secret not in log and secret[4:] not in log
        assert secret not in dump and secret[4:] not in dump


def test_openapi_documents_the_ingestion_routes(service: Deployment) -> None:
    spec = httpx.get(f"{service.base}/openapi.json").json()
    post = spec["paths"]["/v1/endpoints/{name}/events"]["post"]
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("EventsReceipt")
    assert {"400", "401", "403", "404", "413", "415", "422", "429"} <= set(post["responses"])
    assert set(post["requestBody"]["content"]) >= {"application/json", ARROW, PARQUET}


# -- limits: a service of their own -------------------------------------------------------------


def compressed_bombs() -> dict[str, bytes]:
    """A Parquet file and an Arrow stream, zstd-compressed, of 20,000 and 1,000 equal rows."""
    row = events(1, prefix="same")
    parquet = io.BytesIO()
    pq.write_table(
        pa.Table.from_pandas(pd.concat([row] * 20_000), preserve_index=False), parquet, compression="zstd"
    )
    table = pa.Table.from_pandas(pd.concat([row] * 1000), preserve_index=False)
    stream = io.BytesIO()
    options = pyarrow.ipc.IpcWriteOptions(compression="zstd")
    with pyarrow.ipc.new_stream(stream, table.schema, options=options) as writer:
        writer.write_table(table)
    return {PARQUET: parquet.getvalue(), ARROW: stream.getvalue()}


def test_bodies_over_the_limit_are_refused_by_length_and_while_streaming(tmp_path: Path) -> None:
    home = tmp_path / "mm_home"
    home.mkdir()
    secrets = deploy(home)
    headers = {"Authorization": f"Bearer {secrets['project']}", "Content-Type": "application/json"}
    frame = events(200, prefix="big")
    with running_service(home, {"MM_MAX_BODY_BYTES": "8000"}) as base:
        url = f"{base}/v1/endpoints/fraud/events"
        declared = httpx.post(url, content=json_body(frame), headers=headers)
        assert declared.status_code == 413 and "8000 bytes" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            body = json_body(frame)
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        streamed = httpx.post(url, content=chunks(), headers=headers)
        assert streamed.status_code == 413
        small = httpx.post(url, content=json_body(frame.head(3)), headers=headers)
        assert small.status_code == 202
        for kind, body in compressed_bombs().items():  # small bodies that decode to > 8 x 8000 bytes
            assert len(body) < 8000
            bomb = httpx.post(url, content=body, headers={**headers, "Content-Type": kind})
            assert bomb.status_code == 413 and "decompresses to more than 64000" in bomb.json()["detail"]
    assert len(stored(home, "fraud")) == 3


def test_writes_beyond_the_concurrency_limit_get_429_with_retry_after(tmp_path: Path) -> None:
    home = tmp_path / "mm_home"
    home.mkdir()
    secrets = deploy(home)
    headers = {"Authorization": f"Bearer {secrets['project']}", "Content-Type": "application/json"}
    body = json_body(events(5, prefix="slow"))
    release = threading.Event()
    sending = threading.Event()

    def slow_body() -> Iterator[bytes]:  # holds the only write slot until released
        yield body[:10]
        sending.set()
        release.wait(30)
        yield body[10:]

    with running_service(home, {"MM_MAX_CONCURRENT_WRITES": "1"}) as base:
        url = f"{base}/v1/endpoints/fraud/events"
        result: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: result.append(httpx.post(url, content=slow_body(), headers=headers))
        )
        slow.start()
        try:
            assert sending.wait(10)
            deadline = time.monotonic() + 10
            while True:  # the slow request holds the slot once its first bytes are read
                refused = httpx.post(url, content=json_body(events(1, prefix="x")), headers=headers)
                if refused.status_code == 429 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        finally:
            release.set()
            slow.join(30)
        assert result[0].status_code == 202 and result[0].json()["stored"] == 5
        after = httpx.post(url, content=json_body(events(2, prefix="after")), headers=headers)
        assert after.status_code == 202


@pytest.mark.slow
def test_mm_serve_with_two_workers_stores_every_batch(tmp_path: Path) -> None:
    """`mm serve --workers 2`: each worker process makes its app from the environment."""
    import os
    import subprocess
    import sys

    from .servers import free_port

    home = tmp_path / "mm_home"
    home.mkdir()
    secrets = deploy(home)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parent.parent
    with (home / "service.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mm_dagster.cli", "serve", "--port", str(port), "--workers", "2"],
            cwd=root,
            env={**os.environ, "MM_HOME": str(home), "PYTHONPATH": str(root)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, (home / "service.log").read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "mm serve --workers 2 did not answer"
                time.sleep(0.2)
            headers = {"Authorization": f"Bearer {secrets['project']}", "Content-Type": ARROW}
            for i in range(6):
                body = arrow_body(events(10, prefix=f"w{i}"))
                assert (
                    httpx.post(f"{base}/v1/endpoints/fraud/events", content=body, headers=headers).status_code
                    == 202
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert len(stored(home, "fraud")) == 60
    assert (home / "service.log").read_text().count("Started server process") == 2
