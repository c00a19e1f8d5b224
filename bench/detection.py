"""Per-window false alarms and power of the default drift app's verdicts, across feature
counts, window sizes and feature shapes (fixed seeds), beside the old per-feature rule's.

False alarms: windows drawn from the reference distribution; share of windows whose
`feature_drift` is potential_detection or worse, and detected. Budget: <= 1% and <= 0.1%.
Power: one feature of the window has 20% of its mass moved; share of windows flagged (>= 95%
wanted from 300 rows). Usage: python bench/detection.py [--quick]
"""

import sys
import time

import numpy as np
import pandas as pd

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.simulation import FEATURE_SHAPES, draw_feature, move_mass
from mm_dagster.stats.drift import family_verdicts, feature_drifts
from mm_dagster.stats.drift_methods import method_registry
from mm_dagster.stats.feature_stats import compute_feature_stats

QUICK = "--quick" in sys.argv
REFERENCE_ROWS = 5000
METHODS = method_registry()


def window_status(reference_stats: dict, window: pd.DataFrame) -> ResultStatusApp:
    verdicts = family_verdicts(feature_drifts(reference_stats, window), methods=METHODS)
    return max((v.status for v in verdicts), default=ResultStatusApp.no_detection)


def rates(
    shape: str, features: int, rows: int, windows: int, *, moved: float, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    columns = [f"x{i}" for i in range(features)]
    reference = pd.DataFrame({c: draw_feature(shape, REFERENCE_ROWS, rng) for c in columns})
    stats = compute_feature_stats(reference)
    potential = detected = 0
    for _ in range(windows):
        window = pd.DataFrame({c: draw_feature(shape, rows, rng) for c in columns})
        if moved:
            window["x0"] = move_mass(shape, window["x0"].to_numpy(), moved, rng)
        status = window_status(stats, window)
        potential += status >= ResultStatusApp.potential_detection
        detected += status == ResultStatusApp.detected
    return potential / windows, detected / windows


def main() -> None:
    started = time.perf_counter()
    windows = 200 if QUICK else 1000
    print(
        f"false alarms: windows from the reference ({windows} windows each, reference {REFERENCE_ROWS} rows)"
    )
    print(f"{'shape':<17}{'features':>9}{'rows':>7}{'potential+':>12}{'detected':>10}")
    worst = [0.0, 0.0]
    for shape in ("normal", "lognormal", "discrete", "zero_inflated", "categorical", "high_cardinality"):
        for features, rows in ((1, 100), (20, 100), (20, 1000), (200, 100), (200, 300)):
            if features == 200 and QUICK:
                continue
            n = windows if features < 200 else windows // 5
            pot, det = rates(shape, features, rows, n, moved=0.0, seed=features * 7 + rows)
            worst = [max(worst[0], pot), max(worst[1], det)]
            print(f"{shape:<17}{features:>9}{rows:>7}{pot:>12.2%}{det:>10.2%}", flush=True)
    print(f"worst: potential+ {worst[0]:.2%} (budget 1%), detected {worst[1]:.2%} (budget 0.1%)")
    print("\npower: 20% of one feature's mass moved")
    print(f"{'shape':<17}{'features':>9}{'rows':>7}{'flagged':>10}")
    weakest = 1.0
    for shape in FEATURE_SHAPES:
        for features, rows in ((1, 300), (20, 300), (200, 300), (20, 1000)):
            if features == 200 and QUICK:
                continue
            pot, _ = rates(
                shape, features, rows, 100 if features < 200 else 40, moved=0.2, seed=rows + features
            )
            weakest = min(weakest, pot)
            print(f"{shape:<17}{features:>9}{rows:>7}{pot:>10.0%}", flush=True)
    print(f"weakest power: {weakest:.0%} (wanted >= 95%)   [{time.perf_counter() - started:.0f} s]")


if __name__ == "__main__":
    main()
