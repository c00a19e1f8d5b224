"""`mm_dagster.client` against `mm serve` on loopback: batches, errors, retries, the recorder."""

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mm_dagster.client import MonitoringClient, ServiceError, ServiceUnavailableError

from .labelled_model import binary_frame
from .servers import free_port
from .service_server import running_service
from .test_ingest_api import Deployment, deploy, events, json_body, stored


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("client") / "mm_home"
    home.mkdir()
    secrets = deploy(home)
    with running_service(home) as base:
        yield Deployment(home, base, secrets)


def client_of(service: Deployment, token: str = "project", **options: object) -> MonitoringClient:
    return MonitoringClient(service.base, service.secrets[token], **options)  # type: ignore[arg-type]


def rows_with_prefix(service: Deployment, endpoint: str, prefix: str) -> pd.DataFrame:
    back = stored(service.home, endpoint)
    return back[back["request_id"].str.startswith(prefix)] if len(back) else back


def test_events_and_labels_are_stored_through_the_client(service: Deployment) -> None:
    with client_of(service) as client:
        receipt = client.record_events("fraud", events(40, prefix="cli"))
        assert (receipt.received, receipt.stored, receipt.duplicate) == (40, 40, False)
        scored = binary_frame(10, seed=8)
        served = scored.drop(columns="label").assign(
            request_id=[f"cli-lab-{i}" for i in range(10)],
            timestamp=pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=5),
        )
        client.record_events("scorer", served)
        labels = client.record_labels(
            "scorer", pd.DataFrame({"request_id": served["request_id"], "label": scored["label"]})
        )
        assert (labels.stored, labels.matched, labels.unmatched) == (10, 10, 0)
    assert len(rows_with_prefix(service, "fraud", "cli-")) == 40
    assert rows_with_prefix(service, "scorer", "cli-lab-")["label"].tolist() == scored["label"].tolist()


def test_a_refused_batch_raises_with_the_services_message(service: Deployment) -> None:
    frame = events(6, prefix="refused").astype({"f2": object})
    frame.loc[4, "f2"] = "high"
    with client_of(service) as client:
        with pytest.raises(ServiceError, match=r"422: .*field 'f2', row 4") as refused:
            client.record_events("fraud", frame)
        assert refused.value.status_code == 422
        with pytest.raises(ServiceError, match="404: unknown endpoint 'nobody'"):
            client.record_events("nobody", events(1, prefix="x"))
    with client_of(service, token="fraud") as scoped, pytest.raises(ServiceError, match="403") as forbidden:
        scoped.record_events("other", events(1, prefix="x"))
    assert service.secrets["fraud"] not in str(forbidden.value)
    assert len(rows_with_prefix(service, "fraud", "refused-")) == 0


class LosesFirstAnswer(httpx.HTTPTransport):
    """A network that delivers the first request but loses the service's answer to it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent.append(request.headers.get("idempotency-key"))
        if len(self.sent) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset while reading the answer")
        return response


def test_a_retry_after_a_lost_answer_stores_the_batch_once(service: Deployment) -> None:
    transport = LosesFirstAnswer()
    with client_of(service, transport=transport, backoff_seconds=0.01) as client:
        receipt = client.record_events("fraud", events(30, prefix="lost"))
    assert len(transport.sent) == 2 and transport.sent[0] == transport.sent[1] is not None
    assert receipt.duplicate and receipt.stored == 0  # the first attempt had stored it
    assert len(rows_with_prefix(service, "fraud", "lost-")) == 30


def test_an_unreachable_service_is_retried_then_reported(tmp_path: Path) -> None:
    started = time.monotonic()
    with (
        MonitoringClient(
            f"http://127.0.0.1:{free_port()}", "mmt_x", retries=2, backoff_seconds=0.05
        ) as client,
        pytest.raises(ServiceUnavailableError, match="gave up after 3 attempt"),
    ):
        client.record_events("fraud", events(1, prefix="x"))
    assert 0.15 <= time.monotonic() - started < 10  # waited 0.05 + 0.1 between the attempts


def test_429_is_retried_after_retry_after(tmp_path: Path) -> None:
    home = tmp_path / "mm_home"
    home.mkdir()
    secrets = deploy(home)
    release = threading.Event()
    body = json_body(events(3, prefix="holder"))

    def held() -> Iterator[bytes]:
        yield body[:5]
        release.wait(30)
        yield body[5:]

    statuses: list[int] = []

    class Watching(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            statuses.append(response.status_code)
            if response.status_code == 429:
                release.set()  # the slot frees while the client waits Retry-After
            return response

    with running_service(home, {"MM_MAX_CONCURRENT_WRITES": "1"}) as base:
        headers = {"Authorization": f"Bearer {secrets['project']}", "Content-Type": "application/json"}
        holder = threading.Thread(
            target=httpx.post,
            args=(f"{base}/v1/endpoints/fraud/events",),
            kwargs={"content": held(), "headers": headers},
        )
        holder.start()
        time.sleep(0.5)
        with MonitoringClient(
            base, secrets["project"], transport=Watching(), retries=6, backoff_seconds=0.05
        ) as client:
            started = time.monotonic()
            receipt = client.record_events("fraud", events(4, prefix="patient"))
            waited = time.monotonic() - started
        release.set()
        holder.join(30)
    assert statuses[0] == 429 and statuses[-1] == 202 and receipt.stored == 4
    assert waited >= 1.0  # Retry-After: 1, not the 0.05 s backoff


def test_the_remote_recorder_flushes_on_close_and_counts_refused_rows(service: Deployment) -> None:
    with client_of(service) as client:
        recorder = client.recorder(max_events=10_000, max_seconds=60, handle_signals=False)
        for i in range(20):
            recorder.record(
                "fraud",
                {"f0": float(i), "f1": 1.0, "f2": 2.0, "f3": 3.0, "c0": "web"},
                {"prediction": 1.0},
                request_id=f"remote-{i}",
                latency_us=250,
            )
        recorder.record(
            "fraud", {"f0": "bad", "f1": 1.0, "f2": 2.0, "f3": 3.0, "c0": "web"}, {"prediction": 1.0}
        )
        recorder.record("fraud", {"nope": 1.0})
        predict = client.monitored(lambda x: (x[:, 0] > 0).astype(float), "fraud", recorder)
        predict(np.array([[1.0, 2.0, 3.0, 4.0, "web"], [-1.0, 2.0, 3.0, 4.0, "app"]], dtype=object))
        assert recorder.pending() == 23  # items: 22 records and a call of two rows
        assert len(rows_with_prefix(service, "fraud", "remote-")) == 0
        recorder.close()
    assert recorder.stats.stored == 22 and recorder.stats.invalid == 2 and recorder.unsent() == 0
    assert len(rows_with_prefix(service, "fraud", "remote-")) == 20


def test_the_remote_recorder_never_raises_when_the_service_is_down() -> None:
    with MonitoringClient(f"http://127.0.0.1:{free_port()}", "mmt_x", retries=0) as client:
        recorder = client.recorder(max_events=5, max_seconds=0.1, handle_signals=False)
        for i in range(12):
            recorder.record("fraud", {"f0": float(i)}, request_id=f"down-{i}")
        assert recorder.flush(timeout=20)
        recorder.close()
    assert recorder.stats.stored == 0 and recorder.stats.dropped == 12 and recorder.pending() == 0


def test_the_client_imports_no_dagster_sqlalchemy_sklearn_or_scipy() -> None:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mm_dagster.client; print(sorted(m for m in "
            "('dagster', 'sqlalchemy', 'sklearn', 'scipy', 'fastapi') if m in sys.modules))",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"


def _default_signal_dispositions() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.slow
def test_sigterm_flushes_a_remote_serving_process(service: Deployment) -> None:
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.remote_serving_process",
            service.base,
            service.secrets["fraud"],
            "fraud",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signal_dispositions,  # as in test_recorder: an orchestrator's defaults
    )
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "served 200"  # all buffered, none sent yet
    before = stored(service.home, "fraud")
    server.send_signal(signal.SIGTERM)
    try:
        returncode = server.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail(f"the server did not stop after SIGTERM; its stderr:\n{server.communicate()[1]}")
    _, stderr = server.communicate()
    assert returncode == -signal.SIGTERM, stderr
    after = stored(service.home, "fraud")
    assert len(after) - len(before) == 200
    assert set(range(200)) <= set(after["f0"])
