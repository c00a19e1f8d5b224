"""A writer process of the distributed test: creates its endpoints (references on the
deployment's reference store) and records each one's events over the given windows, through
`Monitoring.record_events` on the stores the environment names (MM_DATABASE_URL, MM_*_ROOT).
`python -m tests.distributed_writer FIRST STOP WINDOW_START WINDOWS BASE_PERIOD`: endpoints
`model-FIRST` .. `model-(STOP-1)`; every third one drifts."""

import sys
from datetime import timedelta

from mm_dagster.core.windows import to_utc
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

ROWS_PER_WINDOW = 120


def endpoint_name(index: int) -> str:
    return f"model-{index:03d}"


def main(first: int, stop: int, window_start: str, windows: int, base_period: int) -> None:
    start = to_utc(window_start)
    end = start + timedelta(minutes=base_period * windows)
    with Monitoring() as mm:
        for i in range(first, stop):
            name = endpoint_name(i)
            mm.create_endpoint(name, reference=reference_frame(1000, seed=i), label_names=["prediction"])
            shape = TrafficShape(mean_shift=3.0, drifted_features=3) if i % 3 == 0 else TrafficShape()
            mm.record_events(name, traffic_frame(ROWS_PER_WINDOW * windows, start, end, shape, seed=1000 + i))
            print(name, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
