"""The default app: histogram data drift, MLRun-compatible outputs plus per-feature verdicts."""

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.drift_histograms import DriftHistograms
from mm_dagster.applications.drift_runs import (
    FeaturePlans,
    PackedRun,
    RunDrift,
    packed_run,
    packed_run_drifts,
)
from mm_dagster.applications.model_cache import PreparedReferences
from mm_dagster.core.collector import collector_paused
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.links import UiLinks
from mm_dagster.core.outputs import (
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
)
from mm_dagster.core.persistence import Persistence
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.thresholds import Thresholds, check_window_alphas
from mm_dagster.stats.drift import (
    DriftParts,
    Family,
    FamilyVerdicts,
    FeatureDrift,
    drift_score,
    families_verdicts,
    feature_drift_parts,
    with_distances,
)
from mm_dagster.stats.drift_methods import (
    DEFAULT_METHOD,
    DriftMethod,
    FeaturePolicy,
    method_registry,
    resolve_policies,
)


class HistogramDataDriftApplication(ModelMonitoringApplicationBase):
    """TVD, Hellinger and KLD between each feature's window and reference histograms.

    MLRun-compatible: metrics `hellinger_mean`, `kld_mean`, `tvd_mean` and result `general_drift`
    (mean of hellinger_mean and tvd_mean against `potential`/`detected`) over every column.
    Beyond MLRun: result `feature_drift` over the model's inputs and `prediction_drift` over its
    outputs, each the worst per-feature verdict within the window's false-alarm budget
    (`window_alpha_potential`, `window_alpha_detected`; see stats.drift) and valued by the
    importance-weighted drift score. `features` sets per-feature policies (exclude, method,
    threshold, weight), `default_method` the method of the others, `effect_size_floor` their
    threshold (None: the method's default), `extra_methods` adds user methods. `persistence=(k, n)`
    reports a status only when it held in k of the last n windows (core.persistence).

    Every analysed window's per-feature histograms are stored with its results (cheap: counts
    only) and `extra_data["report"]` of feature_drift / prediction_drift is the address of the
    window page the service renders from them (`MM_UI_URL`); `drift_report="never"` stores none
    (and leaves `report` None). "on_detection" and "always", from when pages were rendered at
    run time, now both store every window's counts.
    """

    NAME = "histogram-data-drift"
    RESULT_NAMES = ("general_drift", "feature_drift", "prediction_drift")
    event_columns = "model"
    reads_reference_plans = True

    def __init__(
        self,
        potential: float = 0.5,
        detected: float = 0.7,
        *,
        mlrun_compatible_binning: bool = False,
        min_window_rows: int = 30,
        window_alpha_potential: float = 0.005,
        window_alpha_detected: float = 0.0005,
        features: Mapping[str, FeaturePolicy] | None = None,
        default_method: str = DEFAULT_METHOD,
        effect_size_floor: float | None = None,
        extra_methods: Iterable[DriftMethod] = (),
        drift_report: str = "on_detection",
        persistence: Persistence | tuple[int, int] | None = None,
    ) -> None:
        self.thresholds = Thresholds(potential, detected, what="general_drift", below_one=True)
        if min_window_rows < 1:
            raise MonitoringError(f"min_window_rows must be >= 1, got {min_window_rows}")
        check_window_alphas(window_alpha_potential, window_alpha_detected)
        if effect_size_floor is not None and not effect_size_floor >= 0:
            raise MonitoringError(f"effect_size_floor must be >= 0, got {effect_size_floor}")
        if drift_report not in ("on_detection", "always", "never"):
            raise MonitoringError(f"drift_report must be on_detection, always or never, got {drift_report!r}")
        self.methods = method_registry(extra_methods)
        self.policies = dict(features or {})
        resolve_policies(self.policies, self.methods, default_method)
        self.default_method = default_method
        self.effect_size_floor = effect_size_floor
        self.drift_report = drift_report
        self.mlrun_compatible_binning = mlrun_compatible_binning
        self.min_window_rows = min_window_rows
        self.window_alpha_potential = window_alpha_potential
        self.window_alpha_detected = window_alpha_detected
        self._references = PreparedReferences()
        self._histograms = DriftHistograms()
        if persistence is not None:
            self.persistence = (
                persistence if isinstance(persistence, Persistence) else Persistence(*persistence)
            )

    def _with_floor(self, policy: FeaturePolicy) -> FeaturePolicy:
        if policy.threshold is None and self.effect_size_floor is not None:
            return FeaturePolicy(policy.exclude, policy.method, self.effect_size_floor, policy.weight)
        return policy

    def _policies(self, features: Iterable[str]) -> dict[str, FeaturePolicy]:
        """Each feature's policy (those without their own share one, made once per call)."""
        unlisted = self._with_floor(FeaturePolicy())
        return {f: self._with_floor(self.policies[f]) if f in self.policies else unlisted for f in features}

    def _quantile_features(self, columns: Iterable[str]) -> set[str]:
        return {
            c
            for c, policy in self._policies(columns).items()
            if getattr(self.methods[policy.method or self.default_method], "needs_quantiles", False)
        }

    def _families(
        self, drifts: Sequence[FeatureDrift], outputs: Collection[str], runs: int
    ) -> tuple[Family, Family]:
        """The run's input and output families; `runs`: the app's runs on the endpoint this
        window (1 + segments), sharing the budget."""
        inputs, predictions = (
            Family(
                family,
                self._policies(d.feature for d in family),
                self.window_alpha_potential / runs,
                self.window_alpha_detected / runs,
            )
            for family in (
                [d for d in drifts if d.feature not in outputs],
                [d for d in drifts if d.feature in outputs],
            )
        )
        return inputs, predictions

    def result_thresholds(self) -> dict[str, tuple[float, float]]:
        return {"general_drift": (self.thresholds.potential, self.thresholds.detected)}

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        outcome = self._track_all([monitoring_context])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def track_window(self, contexts: Sequence[MonitoringApplicationContext]) -> list[Any]:
        """Every endpoint and segment of the window in one call (see the base class): each
        context's numeric columns are binned in one compiled pass, then the distances and the
        verdicts of all contexts' features are computed together, and the links resolved once;
        each entry is exactly what `do_tracking` returns for that context (or what it raised).
        The garbage collector is paused meanwhile (`core.collector.collector_paused`)."""
        with collector_paused():
            return self._track_all(contexts)

    def _track_all(self, contexts: Sequence[MonitoringApplicationContext]) -> list[Any]:
        """Each context's outputs (or what it raised): the runs of the packed case together
        (`drift_runs`), the others feature by feature (`stats.drift`)."""
        outcomes: list[Any] = [None] * len(contexts)
        packed: dict[int, PackedRun] = {}
        general: list[int] = []
        plans = FeaturePlans(self._policies, self.methods, self.default_method)
        for i, ctx in enumerate(contexts):
            try:
                run = packed_run(
                    ctx,
                    self._references.of(ctx),
                    plans,
                    mlrun_compatible=self.mlrun_compatible_binning,
                    with_histograms=self.drift_report != "never",
                )
            except Exception as exc:
                outcomes[i] = exc
                continue
            if run is None:
                general.append(i)
            else:
                packed[i] = run
        found = dict(self._general_drifts(contexts, general, outcomes))
        computed = packed_run_drifts(
            list(packed.values()), self.window_alpha_potential, self.window_alpha_detected
        )
        for i, drift in zip(packed, computed, strict=True):
            if drift is None:
                contexts[i].logger.warning("no feature of the window has a reference histogram")
            else:
                found[i] = drift
        pages = UiLinks.from_env().windows_of(self.name)
        for i in sorted(found):
            try:
                outcomes[i] = self._outputs(contexts[i], found[i], pages)
            except Exception as exc:
                outcomes[i] = exc
        return outcomes

    def _general_drifts(
        self, contexts: Sequence[MonitoringApplicationContext], chosen: Sequence[int], outcomes: list[Any]
    ) -> Iterator[tuple[int, RunDrift]]:
        """The `RunDrift` of each chosen context, feature by feature (`stats.drift`); what one
        raised goes to `outcomes`."""
        parts: dict[int, list[DriftParts]] = {}
        for i in chosen:
            try:
                found = self._parts(contexts[i])
            except Exception as exc:
                outcomes[i] = exc
                continue
            if found:
                parts[i] = found
        drifts = dict(zip(parts, with_distances(list(parts.values())), strict=True))
        families = {
            i: self._families(drifts[i], set(contexts[i].label_names), contexts[i].runs_of_endpoint)
            for i in drifts
        }
        judged = families_verdicts(
            [f for pair in families.values() for f in pair],
            methods=self.methods,
            default_method=self.default_method,
        )
        verdicts = iter(judged)
        for i, (_, predictions) in families.items():
            input_verdicts, output_verdicts = next(verdicts), next(verdicts)
            ctx = contexts[i]
            try:
                histograms = None
                if self.drift_report != "never":
                    histograms = self._histograms.of(ctx, drifts[i], self._references.of(ctx))
                yield (
                    i,
                    RunDrift.of(
                        drifts[i],
                        FamilyVerdicts.of(input_verdicts),
                        FamilyVerdicts.of(output_verdicts) if predictions.drifts else None,
                        histograms,
                    ),
                )
            except Exception as exc:
                outcomes[i] = exc

    def _parts(self, ctx: MonitoringApplicationContext) -> list[DriftParts]:
        """The context's drift parts ([] with a warning when there is nothing to compare)."""
        prepared = self._references.of(ctx)
        if not prepared.stats_features:
            ctx.logger.warning("endpoint has no reference feature_stats; no drift computed")
            return []
        parts = feature_drift_parts(
            prepared,
            ctx.shared_sample_df,
            mlrun_compatible_binning=self.mlrun_compatible_binning,
            quantile_features=self._quantile_features(prepared),
            summaries=self.drift_report != "never",
            numbers=ctx.shared_sample_numbers,
        )
        if not parts:
            ctx.logger.warning("no feature of the window has a reference histogram")
        return parts

    def _outputs(
        self, ctx: MonitoringApplicationContext, drift: RunDrift, pages: Callable[[str, datetime, str], str]
    ) -> list[Any]:
        """The run's metrics and results (no prediction_drift result when none of the model's
        outputs has a histogram to compare); `pages`: the app's window pages (`UiLinks.windows_of`)."""
        tvd_mean, hellinger_mean, kld_mean = np.mean([drift.tvd, drift.hellinger, drift.kld], axis=1).tolist()
        general = (hellinger_mean + tvd_mean) / 2
        rows = len(ctx.shared_sample_df)
        too_small = rows < self.min_window_rows
        general_status = ResultStatusApp.irrelevant if too_small else self.thresholds.status(general)
        results = [
            ModelMonitoringApplicationMetric("hellinger_mean", hellinger_mean),
            ModelMonitoringApplicationMetric("kld_mean", kld_mean),
            ModelMonitoringApplicationMetric("tvd_mean", tvd_mean),
            ModelMonitoringApplicationResult.of_json_values(
                name="general_drift",
                value=general,
                kind=ResultKindApp.data_drift,
                status=general_status,
                extra_data={
                    "features": {
                        f: {"tvd": t, "hellinger": h, "kld": k}
                        for f, t, h, k in zip(
                            drift.features, drift.tvd, drift.hellinger, drift.kld, strict=True
                        )
                    },
                    "rows": rows,
                },
            ),
        ]
        page = None
        if drift.histograms is not None:
            ctx.store_histograms(drift.histograms)
            page = pages(ctx.endpoint_name, ctx.window.start, ctx.segment_key)
        tvd = dict(zip(drift.features, drift.tvd, strict=True))
        results.append(self._family_result("feature_drift", drift.inputs, tvd, too_small, page))
        if drift.outputs is not None:
            results.append(self._family_result("prediction_drift", drift.outputs, tvd, too_small, page))
        return results

    def _family_result(
        self,
        name: str,
        verdicts: FamilyVerdicts,
        tvd: Mapping[str, float],
        too_small: bool,
        page: str | None,
    ) -> ModelMonitoringApplicationResult:
        """`tvd`: MLRun's TVD of each compared feature; `page`: the window page's address (None
        when no histograms are stored)."""
        worst = max(verdicts.statuses, default=ResultStatusApp.no_detection)
        relative = verdicts.relative_distances
        drifting = sorted(
            (
                i
                for i, status in enumerate(verdicts.statuses)
                if status >= ResultStatusApp.potential_detection
            ),
            key=lambda i: (-verdicts.statuses[i], verdicts.p_values[i], -relative[i]),
        )
        return ModelMonitoringApplicationResult.of_json_values(
            name=name,
            value=drift_score(verdicts),
            kind=ResultKindApp.data_drift,
            status=ResultStatusApp.irrelevant if too_small else worst,
            extra_data={
                "report": page,
                "drifting_features": [verdicts.features[i] for i in drifting],
                "tested_features": len(verdicts.features),
                "window_alpha": {
                    "potential": self.window_alpha_potential,
                    "detected": self.window_alpha_detected,
                },
                "features": {
                    feature: {
                        "method": method,
                        "distance": distance,
                        "threshold": threshold,
                        "p_value": p_value,
                        "weight": weight,
                        "tvd": tvd[feature],
                        "status": int(status),
                    }
                    for feature, method, distance, threshold, p_value, weight, status in zip(
                        verdicts.features,
                        verdicts.methods,
                        verdicts.distances,
                        verdicts.thresholds,
                        verdicts.p_values,
                        verdicts.weights,
                        verdicts.statuses,
                        strict=True,
                    )
                },
            },
        )
