"""Windows of 1,000, 3,000 and 10,000 endpoints x 1,000 events x 20 features through Dagster.

For each size: the time of one window through Dagster (the monitoring job of
`build_definitions(MonitoringConfig(apps=[HistogramDataDriftApplication()]))`, the default app,
executed in process for the window's partition, in a process of its own that warmed up first,
on a fresh copy of the window as written: the best of `--repeat` runs, calm and storm alternating),
the cost per endpoint, the same size with every endpoint drifted (a storm) and the storm/calm
ratio, the floor measured in the same run (reading the window's rows once, one Arrow scan, plus
one arithmetic-binning numpy pass over them with no Python per endpoint; the best of `--repeat`,
each just before a calm run) and the ratio to it, best to best and the median of each turn's;
then the fitted exponent of time vs endpoints (log-log; target <= 1.1). With `--shards 2`: the
largest size again with K = 2 shards on the multiprocess executor, against K = 1 (target <=
0.65x), each `--repeat` times alternating, best kept; and what two busy processes do together
on this machine against one (`parallel_headroom`), the bound on any K = 2 ratio here, and the
cores the K = 1 run itself kept busy (its threads), which with the headroom bounds K = 2 from below.

Data: endpoints share one reference (stats computed once, rows copied); events are stored as the
recorder stores them (bench/scale_data.py): two drains per window, each holding half of every
endpoint's events and written as one slot file for all endpoints (`EventIngestor.record_tables`),
so a window is two slot files, not two files per endpoint. The window asset reads them as they
are (too few files to compact first); the floor reads the same files.

    python bench/scale.py                 # 1,000, 3,000 and 10,000 endpoints
    python bench/scale.py --sizes 1000    # a quick run
    python bench/scale.py --sizes 10000 --shards 2
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mm_dagster  # noqa: F401  first, as a code location imports it (it chooses Arrow's allocator)

# isort: split
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
from scale_data import create_fleet, write_window  # noqa: E402

EVENTS = 1000
FEATURES = 20
STORM_SHIFT = 1.0
FLOOR_BINS = 20
FLOOR_CHUNK = 65_536  # rows binned at once


def floor_seconds(mm: object, window: object, features: int) -> tuple[float, int]:
    """Read the window's rows once (one Arrow scan of its live files, numeric columns to numpy)
    and bin every value arithmetically into 22 bins per (endpoint, feature), all endpoints in
    one numpy pass: what no per-endpoint code can beat."""
    from mm_dagster.storage.event_store import ENDPOINT_COLUMN, slot_file_format

    started = time.perf_counter()
    files = mm.catalog.live_files(window.start, window.end)  # type: ignore[attr-defined]
    paths = sorted({f"{mm.events.root}/{f.file}" for fs in files.values() for f in fs})  # type: ignore[attr-defined]
    assert all(f.shared_file for fs in files.values() for f in fs), "the window is slot files"
    columns = [f"n{i}" for i in range(features)]
    table = ds.dataset(paths, format=slot_file_format()).to_table(columns=[*columns, ENDPOINT_COLUMN])
    endpoint = table.unify_dictionaries()[ENDPOINT_COLUMN].combine_chunks()
    rows_of = endpoint.indices.to_numpy()
    values = [table[c].to_numpy() for c in columns]
    low = np.array([v.min() for v in values])
    scale = FLOOR_BINS / (np.array([v.max() for v in values]) - low)
    cells_per_endpoint = features * (FLOOR_BINS + 2)
    counts = np.zeros(len(endpoint.dictionary) * cells_per_endpoint, dtype=np.int64)
    for lo in range(0, table.num_rows, FLOOR_CHUNK):  # chunks keep the temporaries in cache
        hi = min(lo + FLOOR_CHUNK, table.num_rows)
        block = np.column_stack([v[lo:hi] for v in values])
        cells = np.clip(((block - low) * scale).astype(np.int64) + 1, 0, FLOOR_BINS + 1)
        owner = rows_of[lo:hi]
        first, last = int(owner.min()), int(owner.max())  # rows are sorted by endpoint: a few
        keys = (owner[:, None] - first) * cells_per_endpoint + np.arange(features) * (FLOOR_BINS + 2) + cells
        span = slice(first * cells_per_endpoint, (last + 1) * cells_per_endpoint)
        counts[span] += np.bincount(keys.ravel(), minlength=span.stop - span.start)
    assert counts.sum() == table.num_rows * features
    return time.perf_counter() - started, int(table.num_rows)


def monitoring_job(home: str, now: datetime, shards: int = 1) -> object:
    from dagster import multiprocess_executor

    from mm_dagster.applications import HistogramDataDriftApplication
    from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
    from mm_dagster.dagster_defs.resources import MonitoringResource

    # Step processes fork from a server that imported the code once (no import per step).
    forked = multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": PRELOAD}}, "max_concurrent": shards}
    )
    options = {"shards": shards, "executor": forked} if shards > 1 else {}
    config = MonitoringConfig(
        apps=[HistogramDataDriftApplication()], partitions_start="2026-01-01", **options
    )
    defs = build_definitions(config, resource=MonitoringResource(home=home), clock=lambda: now)
    return defs.resolve_job_def("mm_monitoring_job")


def sharded_job() -> object:
    """The job for the multiprocess executor's step processes, built once per process: the
    forkserver preloads this module (`PRELOAD`), which builds it at import, so the step processes
    forked from it find it built, as they find a code location's `Definitions` built when its
    module is preloaded (README, "Scaling out")."""
    key = (os.environ["MM_BENCH_HOME"], os.environ["MM_BENCH_NOW"], os.environ["MM_BENCH_SHARDS"])
    if key not in _BUILT:
        _BUILT[key] = monitoring_job(key[0], datetime.fromisoformat(key[1]), int(key[2]))
    return _BUILT[key]


_BUILT: dict[tuple[str, str, str], object] = {}
PRELOAD = [
    "mm_dagster.dagster_defs",
    "mm_dagster.applications",
    "mm_dagster.monitoring",
    "dagster_postgres",
    "scale",
]
if __name__ == "scale" and "MM_BENCH_SHARDS" in os.environ:  # imported by the forkserver
    sharded_job()
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def through_dagster(home: str, window: object, now: datetime, shards: int = 1) -> float:
    from dagster import execute_job, instance_for_test, reconstructable

    with instance_for_test() as instance:
        started = time.perf_counter()
        if shards > 1:
            os.environ.update(MM_BENCH_HOME=home, MM_BENCH_NOW=now.isoformat(), MM_BENCH_SHARDS=str(shards))
            with execute_job(
                reconstructable(sharded_job),
                instance=instance,
                run_config=QUIET,
                tags={"dagster/partition": window.key},  # type: ignore[attr-defined]
            ) as result:
                assert result.success
        else:
            job = monitoring_job(home, now)
            result = job.execute_in_process(  # type: ignore[attr-defined]
                instance=instance,
                partition_key=window.key,  # type: ignore[attr-defined]
                run_config=QUIET,
            )
            assert result.success
        return time.perf_counter() - started


def warm_up() -> None:
    """One small window through Dagster first, in this process: imports, the kernel's machine
    code and Dagster's first-run costs are paid before anything is timed."""
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        now = datetime.now(UTC)
        window = Window.containing(now - timedelta(hours=2), 10)
        write_window(mm, create_fleet(mm, 20, FEATURES), window, EVENTS, shift=0.0)
        mm.close()
        through_dagster(home, window, now)


def measure(size: int, repeat: int) -> dict[str, float]:
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as scratch:
        mm = Monitoring(home=home)
        now = datetime.now(UTC)
        calm = Window.containing(now - timedelta(hours=2), 10)
        storm = Window.containing(now - timedelta(hours=1), 10)
        setup = time.perf_counter()
        fleet = create_fleet(mm, size, FEATURES)
        write_window(mm, fleet, calm, EVENTS, shift=0.0)
        write_window(mm, fleet, storm, EVENTS, shift=STORM_SHIFT)
        setup_s = time.perf_counter() - setup
        mm.close()
        # Each run in a process of its own, as Dagster runs each window (and a large run's freed
        # memory stays with the process that ran it, slowing the next size's runs there), on a
        # fresh copy of the windows as written; the best of `repeat`, the floor, calm and storm
        # alternating (this machine's speed drifts from run to run: each turn's calm/floor is
        # printed too, the floor measured just before the calm run).
        rows_read: list[int] = []

        def floor_of_copy(copy: str) -> float:
            with Monitoring(home=copy) as copied:
                seconds, rows = floor_seconds(copied, calm, FEATURES)
            rows_read.append(rows)
            return seconds

        floor_of_copy(home)  # this process's first scan and binning pay one-time costs

        times = alternating_copies(
            home,
            scratch,
            {
                "floor": floor_of_copy,
                **{
                    name: lambda copy, window=window: timed_run_in_own_process(copy, window, now, 1)
                    for name, window in (("calm", calm), ("storm", storm))
                },
            },
            repeat,
            f"{size:,} endpoints",
        )
        calm_s, storm_s, floor_s = min(times["calm"]), min(times["storm"]), min(times["floor"])
        rows = rows_read[-1]
        turns = [c / f for c, f in zip(times["calm"], times["floor"], strict=True)]
        mm = Monitoring(home=home)
        read_s = min(_timed(lambda: mm.read_window(calm)) for _ in range(2))
        mm.close()
        with Monitoring(home=f"{scratch}/v2") as last:  # the last storm run's results
            flagged = sum(
                r.status.name == "detected"
                for r in last.results.results(
                    app="histogram-data-drift", name="feature_drift", start=storm.start
                )
                if r.window_start == storm.start
            )
    print(
        f"{size:>9,}{setup_s:>9.0f}{read_s:>9.2f}{floor_s:>9.2f}{calm_s:>10.2f}"
        f"{calm_s / size * 1e3:>10.2f}{storm_s:>10.2f}{storm_s / calm_s:>12.2f}{calm_s / floor_s:>12.1f}"
        f"   ({rows:,} rows; storm: {flagged:,} endpoints detected; calm/floor of each turn: "
        f"{' '.join(f'{t:.1f}' for t in turns)}, median {float(np.median(turns)):.1f})",
        flush=True,
    )
    return {
        "size": size,
        "calm": calm_s,
        "storm": storm_s,
        "floor": floor_s,
        "turns": float(np.median(turns)),
    }


def alternating_copies(
    written: str, scratch: str, runs: Mapping[str, Callable[[str], float]], repeat: int, label: str
) -> dict[str, list[float]]:
    """Each of `runs`' seconds, `repeat` turns, the runs alternating, each on a fresh copy of the
    home `written` (every run reads the same files): run n is called with its copy's home,
    `scratch`/v<n> (the last turn's copies are left there)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for n, (name, run) in enumerate(runs.items()):
            home = f"{scratch}/v{n}"
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(written, home)
            times[name].append(run(home))
            print(f"  {label}, {name}: {times[name][-1]:.2f} s", flush=True)
    return times


def alternating_runs(
    size: int, variants: Mapping[str, Callable[[str, object, datetime], float]], repeat: int
) -> dict[str, list[float]]:
    """Each variant's seconds on one window of `size` endpoints written once: `repeat` turns,
    the variants alternating, each run on a fresh copy of the window as written (every run reads
    the same files); a variant is called with that copy's home, the window and the clock."""
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as written, tempfile.TemporaryDirectory() as scratch:
        mm = Monitoring(home=written)
        now = datetime.now(UTC)
        window = Window.containing(now - timedelta(hours=2), 10)
        write_window(mm, create_fleet(mm, size, FEATURES), window, EVENTS, shift=0.0)
        mm.close()
        runs = {name: lambda home, run=run: run(home, window, now) for name, run in variants.items()}
        return alternating_copies(written, scratch, runs, repeat, f"{size:,} endpoints")


def sharded_vs_one(size: int, shards: int, repeat: int) -> None:
    """K=1 in process against K=`shards` on the multiprocess executor, `repeat` times each,
    alternating, each run in a process of its own (`alternating_runs`); the best of each is
    compared (this machine's other tenants add noise)."""
    cores: list[float] = []

    def one_process(home: str, window: object, now: datetime) -> float:
        seconds, busy = run_in_own_process(home, window, now, 1)
        cores.append(busy)
        return seconds

    times = alternating_runs(
        size,
        {
            "K=1": one_process,
            f"K={shards}": lambda home, window, now: timed_run_in_own_process(home, window, now, shards),
        },
        repeat,
    )
    one, many = min(times["K=1"]), min(times[f"K={shards}"])
    runs = ", ".join(f"{k}: " + " ".join(f"{t:.1f}" for t in ts) + " s" for k, ts in times.items())
    print(f"runs: {runs}")
    print(f"best K=1: {one:.2f} s, K={shards}: {many:.2f} s = {many / one:.2f}x (target <= 0.65x)")
    headroom = parallel_headroom(shards, repeat)
    print(
        f"this machine: {shards} busy processes together do {headroom:.2f}x the CPU work of one "
        f"(a pure-Python loop, best of {repeat}): K={shards} cannot take less than "
        f"{1 / headroom:.2f}x of K=1 here, whatever the code"
    )
    busy = float(np.median(cores))
    print(
        f"K=1 itself kept {busy:.2f} cores busy (median of its runs: its part read ahead, its results "
        f"written and its drift kernels on threads beside the apps): K={shards} does at least that "
        f"work, so it cannot take less than {busy / headroom:.2f}x of K=1 here, whatever the code"
    )


BUSY_LOOP = (
    "import time\n"
    "started = time.perf_counter()\n"
    "total = 0\n"
    "for i in range(20_000_000):\n"
    "    total += i\n"
    "print(time.perf_counter() - started)\n"
)


def parallel_headroom(processes: int, repeat: int) -> float:
    """How much CPU work `processes` busy processes do together against one alone: processes x
    one's loop time / the slowest loop time of them together (`processes` on a machine whose
    cores are its own; less where its virtual cores share physical ones or the host is busy).
    The best of `repeat` turns, alone and together alternating."""
    alone, together = [], []
    for _ in range(repeat):
        alone.append(
            float(
                subprocess.run(
                    [sys.executable, "-c", BUSY_LOOP], capture_output=True, text=True, check=True
                ).stdout
            )
        )
        started = [
            subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        together.append(max(float(p.communicate()[0]) for p in started))
    return processes * min(alone) / min(together)


def timed_run_in_own_process(home: str, window: object, now: datetime, shards: int) -> float:
    """`through_dagster` in a new process that first warms up (as this one did): a 10,000-endpoint
    run leaves GBs of freed memory with the process that ran it, and runs after it in the same
    process were OOM-killed."""
    return run_in_own_process(home, window, now, shards)[0]


def run_in_own_process(home: str, window: object, now: datetime, shards: int) -> tuple[float, float]:
    """`timed_run_in_own_process`'s seconds, and the cores its process kept busy meanwhile (CPU
    seconds of all its threads / seconds; the step processes of K > 1 are not counted)."""
    command = [sys.executable, __file__, "--timed-run", home, window.start.isoformat(), now.isoformat()]  # type: ignore[attr-defined]
    done = subprocess.run([*command, str(shards)], check=True, capture_output=True, text=True)
    seconds, cores = done.stdout.split()[-2:]
    return float(seconds), float(cores)


def timed_run(home: str, window_start: str, now: str, shards: str) -> None:
    from mm_dagster.core.windows import Window

    warm_up()
    window = Window.containing(datetime.fromisoformat(window_start), 10)
    cpu = time.process_time()
    seconds = through_dagster(home, window, datetime.fromisoformat(now), int(shards))
    print(seconds, (time.process_time() - cpu) / seconds, flush=True)


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each window and of each K with --shards (best kept)"
    )
    parser.add_argument("--sharded-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timed-run", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timed_run:  # one run of `sharded_vs_one`, in a process of its own
        timed_run(*args.timed_run)
        return
    if args.sharded_only:  # in a process of its own: the sizes above left this one holding GBs
        sharded_vs_one(max(args.sizes), args.shards, args.repeat)
        return
    print(f"endpoints x {EVENTS:,} events x {FEATURES} features, default app, in-process executor")
    print(
        f"{'endpoints':>9}{'setup s':>9}{'read s':>9}{'floor s':>9}{'dagster s':>10}{'ms/endp':>10}"
        f"{'storm s':>10}{'storm/calm':>12}{'x floor':>12}"
    )
    runs = [measure(size, args.repeat) for size in args.sizes]  # each run warms up in its own process
    largest = max(runs, key=lambda r: r["size"])
    times_floor = largest["calm"] / largest["floor"]
    print(
        f"\n{int(largest['size']):,} endpoints through Dagster: {times_floor:.1f}x the "
        f"floor, best of each ({largest['turns']:.1f}x, median of the turns' ratios; target <= 3x); "
        f"storm {largest['storm'] / largest['calm']:.2f}x calm (target <= 1.2x)"
    )
    if len(runs) > 1:
        sizes = np.log([r["size"] for r in runs])
        exponent = np.polyfit(sizes, np.log([r["calm"] for r in runs]), 1)[0]
        print(f"time ~ endpoints^{exponent:.2f} (log-log fit over {len(runs)} sizes; target <= 1.1)")
    if args.shards > 1:
        print(
            f"\n{args.shards} shards (multiprocess executor) vs 1 (in process), "
            f"{int(largest['size']):,} endpoints:"
        )
        sys.stdout.flush()
        size, shards, repeat = str(int(largest["size"])), str(args.shards), str(args.repeat)
        command = [sys.executable, __file__, "--sizes", size, "--shards", shards, "--repeat", repeat]
        subprocess.run([*command, "--sharded-only"], check=True)


if __name__ == "__main__":
    pa.set_cpu_count(2)
    main()
