"""A reader process for the concurrency test: reads the writers' windows until `STOP` exists in
HOME, and prints a line for anything a reader must never see (a partial batch, a duplicate)."""

import sys
import time
from pathlib import Path

from mm_dagster.monitoring import Monitoring

from .event_writer import ROWS, SPAN


def main(home: str) -> None:
    reads = 0
    with Monitoring(home=home) as mm:
        endpoint = mm.get_endpoint("m")
        while not (Path(home) / "STOP").exists():
            rows = mm.read_window(SPAN).get(endpoint.id)
            reads += 1
            if rows is None:
                continue
            per_batch = rows["request_id"].str.rsplit("-", n=1).str[0].value_counts()
            partial = per_batch[per_batch != ROWS]
            if len(partial):
                print(f"PARTIAL {partial.to_dict()}", flush=True)
            if rows["request_id"].duplicated().any():
                print(
                    f"DUPLICATE {rows['request_id'][rows['request_id'].duplicated()].tolist()[:5]}",
                    flush=True,
                )
            time.sleep(0.05)
    print(f"reads {reads}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
