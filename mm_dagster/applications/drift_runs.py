"""What the histogram drift app found in one run, as columns (`RunDrift`), and the packed path
that finds it for many runs of a window at once.

The packed path takes the runs of the default app's common case — every compared feature of
the endpoint's stored plan numeric with union bins, the window's float columns read as one array,
each tested feature's method a row measure — and computes their drift with `stats.packed_drift`:
one union-binning call per run, then one pass over all runs' features for each step. Any other
run goes through `stats.drift` feature by feature; both give the same numbers, statuses and
outputs (tests/test_packed_drift.py runs both on the same windows).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.histograms import NUMERIC, FeatureHistogram, WindowSides
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.column_summary import summary_table
from mm_dagster.stats.drift import PARALLEL_MIN_ROWS, FamilyVerdicts, FeatureDrift
from mm_dagster.stats.drift_methods import DEFAULT_METHOD, DriftMethod, FeaturePolicy
from mm_dagster.stats.packed_drift import (
    PackedCounts,
    PackedDistances,
    packed_distances,
    packed_tests,
    row_measured,
    verdict_statuses,
)
from mm_dagster.stats.reference_plan import PackedReferenceCounts, PreparedReference

# Runs computed together: a few hundred keep their arrays (a few MB) in the caches and in memory
# the allocator reuses; a whole part's 2,500 at once made arrays of tens of MB, each new memory.
RUNS_AT_ONCE = 256


@dataclass(frozen=True)
class RunDrift:
    """One run's compared features (in the reference's order) with MLRun's distances, its
    families' verdicts (`outputs` None when none of the model's outputs was compared) and the
    histograms to store (None when the app stores none)."""

    features: list[str]
    tvd: list[float]
    hellinger: list[float]
    kld: list[float]
    inputs: FamilyVerdicts
    outputs: FamilyVerdicts | None
    histograms: Sequence[FeatureHistogram] | None

    @classmethod
    def of(
        cls,
        drifts: Sequence[FeatureDrift],
        inputs: FamilyVerdicts,
        outputs: FamilyVerdicts | None,
        histograms: Sequence[FeatureHistogram] | None,
    ) -> "RunDrift":
        return cls(
            [d.feature for d in drifts],
            [d.tvd for d in drifts],
            [d.hellinger for d in drifts],
            [d.kld for d in drifts],
            inputs,
            outputs,
            histograms,
        )


@dataclass(frozen=True)
class FeaturePlan:
    """How an app judges a set of features of endpoints with the same outputs: per feature,
    excluded or not, its method (None when excluded), threshold, weight and whether it is one of
    the model's outputs (judged in the `prediction_drift` family)."""

    excluded: np.ndarray
    methods: list[DriftMethod | None]
    method_codes: np.ndarray  # each method's position in the app's registry (-1 where excluded)
    thresholds: list[float]  # as the policies give them (0.0 where excluded)
    weights: list[float]
    is_output: np.ndarray

    @classmethod
    def of(
        cls,
        names: Sequence[str],
        outputs: Sequence[str],
        policies: Mapping[str, FeaturePolicy],
        methods: Mapping[str, DriftMethod],
        default_method: str,
    ) -> "FeaturePlan | None":
        """None when a tested feature's method is not a row measure on the bins (the packed
        path cannot judge it)."""
        chosen: list[DriftMethod | None] = []
        for name in names:
            policy = policies[name]
            if policy.exclude:
                chosen.append(None)
                continue
            method = methods[policy.method or default_method]
            if getattr(method, "needs_quantiles", False):
                return None
            if NUMERIC not in method.kinds:
                method = methods[DEFAULT_METHOD]
            if getattr(method, "row_measure", None) is None:
                return None
            chosen.append(method)
        thresholds = [
            0.0 if method is None else _threshold(policies[name], method)
            for name, method in zip(names, chosen, strict=True)
        ]
        judged_as_output = set(outputs)
        code = {name: i for i, name in enumerate(methods)}
        return cls(
            np.array([policies[n].exclude for n in names], dtype=bool),
            chosen,
            np.array([-1 if m is None else code[m.name] for m in chosen], dtype=np.int64),
            thresholds,
            [policies[n].weight for n in names],
            np.array([n in judged_as_output for n in names], dtype=bool),
        )


def _threshold(policy: FeaturePolicy, method: DriftMethod) -> float:
    return method.default_threshold if policy.threshold is None else policy.threshold


@dataclass(frozen=True)
class PackedRun:
    """One run of the packed path: its features counted, with what judges them."""

    names: tuple[str, ...]
    plan: FeaturePlan
    reference: PackedReferenceCounts
    histograms: np.ndarray  # the window's histogram counts, one feature after another
    drifts: np.ndarray  # the window's counts on the drift bins
    summaries: np.ndarray | None  # each feature's window summary (`summary_table`)
    runs_of_endpoint: int
    version: int


def packed_run(
    ctx: MonitoringApplicationContext,
    prepared: PreparedReference,
    plan_of: "FeaturePlans",
    *,
    mlrun_compatible: bool,
    with_histograms: bool,
) -> PackedRun | None:
    """The run counted for the packed path, or None when it is not the packed case."""
    numbers = ctx.shared_sample_numbers
    frame = ctx.shared_sample_df
    if numbers is None or len(frame) >= PARALLEL_MIN_ROWS or not prepared.stats_features:
        return None
    if with_histograms and (not prepared.has_descriptions or ctx.segment_key):
        return None
    columns = set(frame.columns)  # a pandas Index's `in` costs ~1 us a feature
    names = tuple(f for f in prepared if f in columns)
    if not names or not prepared.gridded.issuperset(names):
        return None
    plan = plan_of(names, tuple(ctx.label_names))
    block = None if plan is None else numbers.select(names)
    if plan is None or block is None:
        return None
    counts = prepared.union_counts(block, names)
    histograms, drifts = prepared.packed_split(names).split_packed(counts, mlrun_compatible)
    return PackedRun(
        names,
        plan,
        prepared.packed_counts(names),
        histograms,
        drifts,
        summary_table(block) if with_histograms else None,
        ctx.runs_of_endpoint,
        ctx.reference_key[1],
    )


class FeaturePlans:
    """`FeaturePlan.of` per (features, outputs), made once per set within one app call."""

    def __init__(
        self,
        policies_of: Callable[[Iterable[str]], Mapping[str, FeaturePolicy]],
        methods: Mapping[str, DriftMethod],
        default_method: str,
    ) -> None:
        self._policies_of = policies_of
        self._methods = methods
        self._default_method = default_method
        self._plans: dict[tuple[tuple[str, ...], tuple[str, ...]], FeaturePlan | None] = {}

    def __call__(self, names: tuple[str, ...], outputs: tuple[str, ...]) -> FeaturePlan | None:
        key = (names, outputs)
        if key not in self._plans:
            self._plans[key] = FeaturePlan.of(
                names, outputs, self._policies_of(names), self._methods, self._default_method
            )
        return self._plans[key]


def packed_run_drifts(
    runs: Sequence[PackedRun], alpha_potential: float, alpha_detected: float
) -> list[RunDrift | None]:
    """Each run's `RunDrift` (None for a run with no feature to compare), `RUNS_AT_ONCE` runs
    computed together; `alpha_*`: the app's window levels (each run's family gets them divided
    by its `runs_of_endpoint` and then by its tested features, as `stats.drift.Family` does)."""
    return [
        drift
        for lo in range(0, len(runs), RUNS_AT_ONCE)
        for drift in _packed_run_drifts(runs[lo : lo + RUNS_AT_ONCE], alpha_potential, alpha_detected)
    ]


def _packed_run_drifts(
    runs: Sequence[PackedRun], alpha_potential: float, alpha_detected: float
) -> list[RunDrift | None]:
    if not runs:
        return []
    window = PackedCounts.of([r.histograms for r in runs], [r.reference.histogram_ends for r in runs])
    reference = PackedCounts(np.concatenate([r.reference.histograms for r in runs]), window.widths)
    distances = packed_distances(window, reference, np.concatenate([r.reference.totals for r in runs]))
    window_tests = PackedCounts.of([r.drifts for r in runs], [r.reference.drift_ends for r in runs])
    reference_tests = PackedCounts(np.concatenate([r.reference.tests for r in runs]), window_tests.widths)
    sizes = [len(r.names) for r in runs]
    run_of = np.repeat(np.arange(len(runs)), sizes)
    firsts = np.cumsum(sizes) - sizes  # each run's first feature among all runs
    excluded = np.concatenate([r.plan.excluded for r in runs])
    is_output = np.concatenate([r.plan.is_output for r in runs])
    tested = np.flatnonzero(distances.kept & ~excluded)
    tests = packed_tests(window_tests, reference_tests, tested)
    codes = np.concatenate([r.plan.method_codes for r in runs])[tested]
    measured = np.zeros(tested.size)
    for code in np.unique(codes).tolist():
        rows = np.flatnonzero(codes == code)
        feature = int(tested[rows[0]])
        run = int(run_of[feature])
        method = runs[run].plan.methods[feature - int(firsts[run])]
        assert method is not None, "a tested feature is not excluded: it has a method"
        measured[rows] = row_measured(method, tests, rows)
    # each tested feature's family: (run, is output); its size is the family's Bonferroni count
    family = run_of[tested] * 2 + is_output[tested]
    family_size = np.bincount(family, minlength=2 * len(runs))
    bonferroni = np.maximum(family_size[family], 1)
    per_run = np.array([r.runs_of_endpoint for r in runs], dtype=np.float64)[run_of[tested]]
    thresholds = np.array([t for r in runs for t in r.plan.thresholds], dtype=np.float64)[tested]
    statuses = verdict_statuses(
        measured,
        thresholds,
        tests.p_values,
        alpha_potential / per_run / bonferroni,
        alpha_detected / per_run / bonferroni,
    )
    return _run_drifts(runs, distances, tested, measured, tests.p_values, statuses, is_output)


def _run_drifts(
    runs: Sequence[PackedRun],
    distances: PackedDistances,
    tested: np.ndarray,
    measured: np.ndarray,
    p_values: np.ndarray,
    statuses: np.ndarray,
    is_output: np.ndarray,
) -> list[RunDrift | None]:
    """The runs' `RunDrift`s from the packed arrays (Python lists, one slice per run)."""
    kept, window_rows = distances.kept.tolist(), distances.window_rows
    tvd, hellinger, kld = distances.tvd.tolist(), distances.hellinger.tolist(), distances.kld.tolist()
    outputs = is_output.tolist()
    verdict_at = dict(zip(tested.tolist(), range(tested.size), strict=True))
    measured_l, p_l, status_l = measured.tolist(), p_values.tolist(), statuses.tolist()
    status_of = {int(s): s for s in ResultStatusApp}  # an enum's call costs ~1 µs a feature
    drifts: list[RunDrift | None] = []
    first = 0
    for run in runs:
        features = range(first, first + len(run.names))
        compared = [i for i in features if kept[i]]
        first += len(run.names)
        if not compared:
            drifts.append(None)
            continue
        families: list[FamilyVerdicts] = []
        for output in (False, True):
            members = [i for i in compared if outputs[i] == output and i in verdict_at]
            at = [verdict_at[i] for i in members]
            local = [i - features.start for i in members]
            families.append(
                FamilyVerdicts(
                    [run.names[j] for j in local],
                    [run.plan.methods[j].name for j in local],  # type: ignore[union-attr]
                    [measured_l[k] for k in at],
                    [run.plan.thresholds[j] for j in local],
                    [p_l[k] for k in at],
                    [run.plan.weights[j] for j in local],
                    [status_of[status_l[k]] for k in at],
                )
            )
        histograms: WindowSides | None = None
        if run.summaries is not None:
            histograms = WindowSides(
                run.names,
                run.histograms,
                run.reference.histogram_ends,
                window_rows[features.start : features.stop],
                run.summaries,
                run.version,
            )
            if len(compared) < len(run.names):
                histograms = histograms.select([i - features.start for i in compared])
        drifts.append(
            RunDrift(
                [run.names[i - features.start] for i in compared],
                [tvd[i] for i in compared],
                [hellinger[i] for i in compared],
                [kld[i] for i in compared],
                families[0],
                families[1] if any(outputs[i] for i in compared) else None,
                histograms,
            )
        )
    return drifts
