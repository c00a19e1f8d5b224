"""A serving process for the crash test: records events through a recorder (small flushes) until
killed. `python -m tests.recorder_process HOME RUN`."""

import sys
from datetime import timedelta

from mm_dagster.monitoring import Monitoring

from .event_writer import SPAN


def main(home: str, run: str) -> None:
    mm = Monitoring(home=home)
    recorder = mm.recorder(max_events=50, max_seconds=0.05)
    for k in range(10_000_000):
        at = SPAN.start + timedelta(seconds=k % 1800)
        features = {"f0": float(k), "f1": 1.0, "f2": 2.0, "f3": 3.0, "c0": "web"}
        recorder.record("m", features, {"prediction": 1.0}, request_id=f"{run}-{k}", timestamp=at)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
