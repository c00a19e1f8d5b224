"""A model server sending to a remote service, for the SIGTERM test: serves 200 requests through
`client.monitored(predict)` with a recorder that would not flush for a minute, says so, then
waits to be stopped. `python -m tests.remote_serving_process BASE_URL TOKEN ENDPOINT`."""

import sys
import time

from mm_dagster.client import MonitoringClient


def predict(rows: list[list[object]]) -> list[float]:
    return [float(float(str(r[0])) > 0) for r in rows]


def main(base: str, token: str, endpoint: str) -> None:
    client = MonitoringClient(base, token)
    recorder = client.recorder(max_events=100_000, max_seconds=60)
    serve = client.monitored(predict, endpoint, recorder)
    for i in range(200):
        serve([[float(i), 1.0, 2.0, 3.0, "web"]])
    print(f"served {recorder.pending()}", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
