"""A writer process for the crash and concurrency tests: records batches spanning three windows
(until killed, or `batches` of them), printing each batch's id once `record_events` acknowledged it.
`python -m tests.event_writer HOME RUN [BATCHES]`."""

import sys
from datetime import timedelta

from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import traffic_frame
from mm_dagster.windows import Window

ROWS = 150
SPAN = Window(
    Window.containing("2026-11-20T10:00:00Z", 10).start,
    Window.containing("2026-11-20T10:00:00Z", 10).start + timedelta(minutes=30),
)


def main(home: str, run: str, batches: int = 1_000_000) -> None:
    with Monitoring(home=home) as mm:
        for k in range(batches):
            df = traffic_frame(ROWS, SPAN.start, SPAN.end, seed=k)
            df["request_id"] = [f"{run}-{k}-{i}" for i in range(ROWS)]
            mm.record_events("m", df)
            print(f"{run}-{k}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
