"""A model server for the SIGTERM test: serves 200 requests through `monitored(predict)` with a
recorder that would not flush for a minute, says so, then waits to be stopped."""

import sys
import time

from mm_dagster.monitoring import Monitoring


def predict(rows: list[list[object]]) -> list[float]:
    return [float(float(str(r[0])) > 0) for r in rows]


def main(home: str) -> None:
    mm = Monitoring(home=home)
    recorder = mm.recorder(max_events=100_000, max_seconds=60)
    serve = mm.monitored(predict, "served", recorder)
    for i in range(200):
        serve([[float(i), 1.0, 2.0, 3.0, "web"]])
    print(f"served {recorder.pending()}", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main(sys.argv[1])
