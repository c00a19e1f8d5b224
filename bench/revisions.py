"""This checkout against another git revision, one window through Dagster, runs alternating.

The machines are noisy (their speed drifts by 10-25% over minutes), so two `scale.py` runs minutes
apart do not compare two revisions. Here one window per size is written once (with this
checkout's code: the revisions must share the stores' format), then each revision analyses a
fresh copy of it in a process of its own (`scale.py --timed-run`: warm-up first, the default app,
in-process executor, the app in its worker thread as in production), the two revisions taking
turns `--repeat` times. Prints every run, the best of each and their ratio.

    python bench/revisions.py HEAD~3                      # 1,000 endpoints, 3 turns each
    python bench/revisions.py 201d206 --sizes 1000 3000 --repeat 2
"""

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from datetime import datetime
from pathlib import Path

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from scale import EVENTS, FEATURES, alternating_runs  # noqa: E402


def timed_run(checkout: Path, home: str, window_start: datetime, now: datetime) -> float:
    """One `scale.py --timed-run` of `checkout`'s code (its own package first on the path)."""
    command = [
        sys.executable,
        str(checkout / "bench" / "scale.py"),
        "--timed-run",
        home,
        window_start.isoformat(),
        now.isoformat(),
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.split()[-1])


def compare(base: Path, size: int, repeat: int) -> None:
    times = alternating_runs(
        size,
        {
            name: lambda home, window, now, checkout=checkout: timed_run(checkout, home, window.start, now)
            for name, checkout in (("base", base), ("this", ROOT))
        },
        repeat,
    )
    best = {name: min(ts) for name, ts in times.items()}
    print(
        f"{size:,} endpoints: base best {best['base']:.2f} s, this checkout best {best['this']:.2f} s "
        f"= {best['this'] / best['base']:.2f}x the base",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base", help="the git revision to compare with (a commit, tag or branch)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each revision per size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as parent:
        base = Path(parent) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True
        )
        try:
            print(f"{args.base} against this checkout, {EVENTS:,} events x {FEATURES} features per endpoint")
            for size in args.sizes:
                compare(base, size, args.repeat)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)


if __name__ == "__main__":
    main()
