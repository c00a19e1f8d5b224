"""A real S3 endpoint for tests: moto's server in its own process on loopback.

`moto_s3_server()` starts `python -m moto.server` on a free port and waits until it answers;
`MotoS3.env()` is what a process needs to reach it (credentials and `AWS_ENDPOINT_URL`, which
pyarrow and boto3 both read), `MotoS3.create_bucket()` makes a bucket, `MotoS3.keys()` lists what
is stored. The `moto_s3` fixture (tests/conftest.py) shares one server per test process; a test
that needs other processes to reach it passes `env()` to them.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow.fs as pafs

REGION = "us-east-1"
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class MotoS3:
    endpoint_url: str
    process: "subprocess.Popen[bytes]"

    def env(self) -> dict[str, str]:
        """Environment variables that point pyarrow, boto3 and the AWS CLI at this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key="testing",
            secret_key="testing",
            endpoint_override=self.endpoint_url,
            region=REGION,
            allow_bucket_creation=True,
        )

    def create_bucket(self, prefix: str = "mm") -> str:
        """A new, empty bucket with a unique name (tests sharing the server never meet)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        return name

    def uri(self, bucket: str, prefix: str) -> str:
        """`s3://bucket/prefix` with the endpoint in the query, for processes without `env()`."""
        return f"s3://{bucket}/{prefix}?endpoint_override={self.endpoint_url}&region={REGION}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key (directory markers left out) under `prefix` of `bucket`, sorted."""
        base = f"{bucket}/{prefix}".rstrip("/")
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        infos = self.filesystem().get_file_info(selector)
        return sorted(i.path[len(bucket) + 1 :] for i in infos if i.type == pafs.FileType.File)

    def read(self, bucket: str, key: str) -> bytes:
        with self.filesystem().open_input_stream(f"{bucket}/{key}") as f:
            data: bytes = f.read()
        return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@contextmanager
def moto_s3_server() -> Iterator[MotoS3]:
    """moto's S3 server in a child process on loopback, stopped on exit. Raises RuntimeError
    naming the reason when it does not come up (moto missing, the process died, no answer)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    # The server's request log goes to a file: a pipe nobody reads would fill up and block it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _answers(f"{url}/moto-api/"):
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"moto's S3 server exited with {process.returncode}: {output[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not answer on {url} in {STARTUP_SECONDS:.0f} s")
                time.sleep(0.2)
            yield MotoS3(url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
