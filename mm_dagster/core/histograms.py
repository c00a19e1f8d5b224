"""One feature's reference and window histograms of one window: what the window page draws.

Apps hand these to the framework (`MonitoringApplicationContext.store_histograms`); they are
stored compactly beside the window's results, and the window page is rendered from them on
request (nothing is rendered at run time).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mm_dagster.core.errors import MonitoringError

NUMERIC = "numeric"
OTHER_BUCKET = "(other)"
UNSEEN_BUCKET = "(unseen)"

Summary = Mapping[str, Any]  # {"mean", "std", "min", "max"} or {"top", "freq", "count"} or {}


@dataclass(frozen=True)
class FeatureHistogram:
    """`labels[i]` names bin i of both histograms; `window_rows` counts the window's values
    binned; summaries as `numeric_summary` / `top_summary` make them (empty when unknown)."""

    feature: str
    kind: str
    labels: Sequence[str]
    reference_counts: Sequence[float]
    window_counts: Sequence[float]
    window_rows: int
    reference_summary: Summary = field(default_factory=dict)
    window_summary: Summary = field(default_factory=dict)

    def check(self, where: str) -> None:
        """Raise naming `where` and the feature when the histograms do not fit together."""
        if not self.feature:
            raise MonitoringError(f"{where}: a histogram's feature name is empty")
        bins = len(self.labels)
        for what, counts in (
            ("reference_counts", self.reference_counts),
            ("window_counts", self.window_counts),
        ):
            if len(counts) != bins:
                raise MonitoringError(
                    f"{where}, feature {self.feature!r}: {what} has {len(counts)} bins, labels {bins}"
                )
            if any(not math.isfinite(c) or c < 0 for c in counts):
                raise MonitoringError(f"{where}, feature {self.feature!r}: {what} must be finite and >= 0")
        if self.window_rows < 0:
            raise MonitoringError(f"{where}, feature {self.feature!r}: window_rows must be >= 0")


def bin_labels(reference: Mapping[str, Any]) -> list[str]:
    """Names of the bins of a feature's reference stats: numeric bins by their midpoints (with
    the open-ended bins below the reference's minimum and above its maximum), categories by value
    (then the reference's rare values and values it never saw)."""
    if "hist" in reference:
        inner = reference["hist"][1][1:-1]
        return ["< min", *[f"{(inner[i] + inner[i + 1]) / 2:.3g}" for i in range(len(inner) - 1)], "> max"]
    return [*map(str, reference.get("freqs", {})), OTHER_BUCKET, UNSEEN_BUCKET]


def reference_summary(reference: Mapping[str, Any]) -> dict[str, Any]:
    """The cheap summary of a feature's reference stats (mean/std/min/max, or its top value)."""
    if all(k in reference for k in ("mean", "std", "min", "max")):
        return {k: float(reference[k]) for k in ("mean", "std", "min", "max")}
    if "top" in reference:
        return {
            "top": str(reference["top"]),
            "freq": int(reference["freq"]),
            "count": int(reference["count"]),
        }
    return {}
