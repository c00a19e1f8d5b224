"""One feature's reference and window histograms of one window: what the window page draws.

Apps hand these to the framework (`MonitoringApplicationContext.store_histograms`); they are
stored compactly beside the window's results, and the window page is rendered from them on
request (nothing is rendered at run time).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, overload

import numpy as np

from mm_dagster.core.errors import MonitoringError

NUMERIC = "numeric"
OTHER_BUCKET = "(other)"
UNSEEN_BUCKET = "(unseen)"

Summary = Mapping[str, Any]  # {"mean", "std", "min", "max"} or {"top", "freq", "count"} or {}


@dataclass(frozen=True)
class FeatureHistogram:
    """`labels[i]` names bin i of both histograms; `window_rows` counts the window's values
    binned; a summary is {"mean", "std", "min", "max"} or {"top", "freq", "count"} ({} unknown)."""

    feature: str
    kind: str
    labels: Sequence[str]
    reference_counts: Sequence[float]
    window_counts: Sequence[float]
    window_rows: int
    reference_summary: Summary = field(default_factory=dict)
    window_summary: Summary = field(default_factory=dict)

    def checked(self, where: str) -> "FeatureHistogram":
        """This histogram in plain Python values (str labels, int/float counts, JSON-able
        summaries), ready to store; raises naming `where` and the feature when the histograms do
        not fit together or hold what cannot be stored."""
        feature: object = self.feature  # typed str, but apps may pass anything
        if not isinstance(feature, str) or not feature:
            raise MonitoringError(f"{where}: a histogram's feature name must be a non-empty str")
        at = f"{where}, feature {self.feature!r}"
        bins = len(self.labels)
        counts = {}
        for what, given in (
            ("reference_counts", self.reference_counts),
            ("window_counts", self.window_counts),
        ):
            if len(given) != bins:
                raise MonitoringError(f"{at}: {what} has {len(given)} bins, labels {bins}")
            counts[what] = plain_counts(given, f"{at}: {what}")
        rows = _number(self.window_rows, f"{at}: window_rows")
        if not float(rows).is_integer():
            raise MonitoringError(f"{at}: window_rows must be a whole number, got {self.window_rows!r}")
        return FeatureHistogram(
            self.feature,
            str(self.kind),
            [str(label) for label in self.labels],
            counts["reference_counts"],
            counts["window_counts"],
            int(rows),
            plain_summary(self.reference_summary, f"{at}: reference_summary"),
            plain_summary(self.window_summary, f"{at}: window_summary"),
        )


class CheckedHistogram(FeatureHistogram):
    """A histogram that framework code built from values it had made plain and checked (the
    built-in apps' counts and summaries): `checked` returns it as it is."""

    def checked(self, where: str) -> "FeatureHistogram":
        return self


@dataclass(frozen=True)
class PlannedHistogram(CheckedHistogram):
    """The window side of a built-in app's histogram of a feature of the endpoint's stored
    reference plan (`stats.reference_codec`) of `reference_version`: labels, reference counts
    and reference summary are left empty here and in storage, and joined from that plan when the
    window is read (`storage.window_histograms`); a categorical window summary is made then
    (it names the top bucket by its label)."""

    reference_version: int = 1

    @classmethod
    def window_side(
        cls,
        feature: str,
        kind: str,
        window_counts: list[float],
        window_rows: int,
        window_summary: dict[str, Any],
        reference_version: int,
    ) -> "PlannedHistogram":
        """A feature's window side, its labels, reference counts and summary left to the plan.
        Its fields are set at once (a frozen dataclass's `__init__` sets them one by one through
        `object.__setattr__`; a window of 10,000 endpoints makes 200,000 of these)."""
        histogram = object.__new__(cls)
        histogram.__dict__.update(
            feature=feature,
            kind=kind,
            labels=(),
            reference_counts=(),
            window_counts=window_counts,
            window_rows=window_rows,
            reference_summary={},
            window_summary=window_summary,
            reference_version=reference_version,
        )
        return histogram


SUMMARY_COLUMNS = ("count", "mean", "std", "min", "max")  # a `WindowSides` summary row


class WindowSides(Sequence[FeatureHistogram]):
    """The window sides of numeric features of one stored reference plan, held as arrays, as a
    built-in app hands a run's histograms to `store_histograms`: feature i's window counts are
    `counts[ends[i] - widths[i]:ends[i]]`, its rows binned `rows[i]` and its summary row
    `summaries[i]` (`SUMMARY_COLUMNS`: finite values counted, their mean, std, min and max; a
    non-finite one reads as None, as stored JSON holds it). They are stored from the arrays
    (`storage.window_histograms`), with no object per feature (a window of 10,000 endpoints x 20
    features made 200,000); an item read is the `PlannedHistogram` it stands for, made then."""

    __slots__ = ("counts", "ends", "features", "reference_version", "rows", "summaries")

    def __init__(
        self,
        features: Sequence[str],
        counts: np.ndarray,
        ends: np.ndarray,
        rows: np.ndarray,
        summaries: np.ndarray,
        reference_version: int,
    ) -> None:
        n = len(features)
        self.features = tuple(features)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.summaries = np.asarray(summaries, dtype=np.float64)
        self.reference_version = int(reference_version)
        shapes_fit = self.ends.shape == self.rows.shape == (n,) and self.summaries.shape == (n, 5)
        if not shapes_fit or (n and int(self.ends[-1]) != self.counts.size):
            raise MonitoringError(
                f"window sides of {n} features do not fit: ends {self.ends.shape}, rows "
                f"{self.rows.shape}, summaries {self.summaries.shape}, {self.counts.size} counts"
            )
        if n and (int(self.counts.min(initial=0)) < 0 or int(self.rows.min()) < 0):
            raise MonitoringError(f"window sides of features {self.features}: counts and rows must be >= 0")

    @property
    def widths(self) -> np.ndarray:
        widths: np.ndarray = np.diff(self.ends, prepend=0)
        return widths

    def __len__(self) -> int:
        return len(self.features)

    @overload
    def __getitem__(self, index: int) -> FeatureHistogram: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[FeatureHistogram]: ...

    def __getitem__(self, index: int | slice) -> FeatureHistogram | Sequence[FeatureHistogram]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]
        start = int(self.ends[i - 1]) if i else 0
        count, *values = self.summaries[i].tolist()
        summary = {
            k: v if math.isfinite(v) else None for k, v in zip(SUMMARY_COLUMNS[1:], values, strict=True)
        }
        return PlannedHistogram.window_side(
            self.features[i],
            NUMERIC,
            self.counts[start : int(self.ends[i])].tolist(),
            int(self.rows[i]),
            summary if count else {},
            self.reference_version,
        )

    def __eq__(self, other: object) -> bool:
        """Equal to a sequence of the same histograms (a list of them, say)."""
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def select(self, members: Sequence[int]) -> "WindowSides":
        """The sides of features `members` (positions, in that order)."""
        chosen = np.asarray(members, dtype=np.int64)
        every_width = self.widths
        widths, starts = every_width[chosen], (self.ends - every_width)[chosen]
        taken = np.repeat(starts - np.cumsum(widths) + widths, widths) + np.arange(int(widths.sum()))
        return WindowSides(
            [self.features[i] for i in chosen.tolist()],
            self.counts[taken],
            np.cumsum(widths),
            self.rows[chosen],
            self.summaries[chosen],
            self.reference_version,
        )


def numbered_bins(bins: int) -> list[str]:
    """Labels of bins that no reference describes (a binning its labels do not fit)."""
    return [f"bin {i}" for i in range(bins)]


def counts_list(counts: Any) -> list[float]:
    """Counts (a numpy array) as a list, whole ones as ints (shorter stored)."""
    if counts.dtype.kind in "iu":
        integers: list[float] = counts.tolist()
        return integers
    values: list[float] = counts.tolist()
    if all(v.is_integer() for v in values):  # a few dozen values: faster than numpy's calls
        return [int(v) for v in values]
    return values


def top_bucket(labels: Sequence[str], counts: Sequence[float]) -> dict[str, Any]:
    """The fullest category bucket (`(unseen)` when the window's values are mostly new)."""
    total = sum(counts)
    if not total:
        return {}
    top = max(range(len(counts)), key=counts.__getitem__)
    return {"top": labels[top], "freq": int(counts[top]), "count": int(total)}


def _number(value: Any, where: str) -> float:
    """A finite number >= 0 (numpy scalars included) as a float, else an error naming `where`."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise MonitoringError(f"{where} must hold numbers, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise MonitoringError(f"{where} must be finite and >= 0, got {value!r}")
    return number


def plain_counts(counts: Sequence[float], where: str) -> list[float]:
    """`counts` as plain ints and floats, checked finite and >= 0 (raises naming `where`)."""
    if type(counts) is list and set(map(type, counts)) <= {int} and min(counts, default=0) >= 0:
        return list(counts)  # already plain (the built-in apps' counts): no per-value checks
    plain: list[float] = []
    for count in counts:
        number = _number(count, where)
        plain.append(int(number) if number.is_integer() else number)
    return plain


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def plain_summary(summary: Summary, where: str) -> dict[str, Any]:
    """Summary values as JSON holds them: numpy scalars unwrapped; only str, bool, numbers, None."""
    plain: dict[str, Any] = {}
    for key, value in summary.items():
        if type(value) in _PLAIN_TYPES:  # the built-in apps' summaries: nothing to unwrap or check
            plain[str(key)] = value
            continue
        item = value.item() if hasattr(value, "item") and not isinstance(value, str | bytes) else value
        if item is not None and not isinstance(item, str | bool | int | float):
            raise MonitoringError(f"{where}: {key!r} must be a str, number or None, got {value!r}")
        plain[str(key)] = item
    return plain


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
