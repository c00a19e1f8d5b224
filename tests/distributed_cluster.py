"""The processes of the distributed test, started on loopback and stopped by it: dagster-celery
workers and a dagster-daemon, each in a session of its own (so a worker can be killed with every
process it started, as when its host dies), their output in log files the test prints on failure."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
RABBITMQ = ("127.0.0.1", 5672)
BROKER_URL = f"pyamqp://guest@{RABBITMQ[0]}:{RABBITMQ[1]}//"
STOP_SECONDS = 30
LOG_TAIL_CHARS = 3000


def rabbitmq_or_skip() -> str:
    """The loopback broker's URL; the calling test skips, with the reason, when nothing listens."""
    try:
        with socket.create_connection(RABBITMQ, timeout=3):
            pass
    except OSError as exc:
        pytest.skip(f"RabbitMQ is not reachable at {RABBITMQ[0]}:{RABBITMQ[1]}: {exc}")
    return BROKER_URL


@dataclass
class Process:
    name: str
    popen: "subprocess.Popen[bytes]"
    log: Path

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return (
            f"--- {self.name} (pid {self.popen.pid}, exit {self.popen.poll()}) {self.log}\n"
            + (text[-LOG_TAIL_CHARS:])
        )

    def holds(self, pid: int) -> bool:
        """Whether `pid` is this process or one it started (its session)."""
        try:
            return os.getsid(pid) == self.popen.pid
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL to the process and everything it started, as when its host dies."""
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        else:
            # The leader is gone; what it started may not be.
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass
class Cluster:
    """Processes sharing one environment (the stores, the Dagster instance, the broker)."""

    env: Mapping[str, str]
    cwd: Path
    logs: Path
    processes: list[Process] = field(default_factory=list)
    killed: str = ""  # the process the test killed on purpose

    def start(self, name: str, args: list[str]) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                args,
                cwd=self.cwd,
                env=dict(self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def celery_worker(self, name: str, config_yaml: Path, queue: str) -> Process:
        """`dagster-celery worker start` on `queue`: one step at a time, so a kill hits one step."""
        return self.start(
            name,
            [
                str(BIN / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(config_yaml),
                "-q",
                queue,
                "-n",
                f"{name}@%h",
                "--",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
            ],
        )

    def daemon(self, workspace: Path) -> Process:
        return self.start("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])

    def check_alive(self) -> None:
        dead = [p for p in self.processes if p.popen.poll() is not None and p.name != self.killed]
        if dead:
            raise AssertionError("exited early:\n" + "\n".join(p.tail() for p in dead))

    def diagnostics(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
