"""Multivariate drift: PCA data-reconstruction error and a domain classifier, per window.

Catches what per-feature tests cannot see (e.g. a correlation that flips while every marginal
stays put). The maths is in `mm_dagster.stats.multivariate`; this app fits it once per
(endpoint, reference version) on the endpoint's stored reference sample, caches it, and scores
each window.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.model_cache import FittedModelCache
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.stats.multivariate import (
    ClassifierSettings,
    DomainClassifier,
    ReconstructionModel,
    ReconstructionSettings,
    auroc_bounds,
    fit_domain_classifier,
    fit_reconstruction,
)
from mm_dagster.stats.tabular_encoding import is_categorical


@dataclass(frozen=True, eq=False)
class FittedReference:
    """What one reference version fits: the models and which features they use."""

    features: tuple[str, ...]
    skipped_features: tuple[str, ...]  # no usable value in the reference
    reconstruction: ReconstructionModel | None  # None with fewer than two usable features
    classifier: DomainClassifier


def usable_features(reference: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(usable, skipped): a feature is usable when the reference has a value for it (finite, if
    numeric)."""
    missing = [f for f in features if f not in reference.columns]
    if missing:
        raise MonitoringError(f"stored reference has no column(s) {missing}")
    usable: list[str] = []
    skipped: list[str] = []
    for feature in features:
        column = reference[feature]
        if is_categorical(column):
            has_value = bool(column.notna().any())
        else:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            has_value = bool(np.isfinite(values).any())
        (usable if has_value else skipped).append(feature)
    return usable, skipped


class MultivariateDriftApplication(ModelMonitoringApplicationBase):
    """Results `reconstruction_drift` (mean PCA reconstruction error) and `domain_classifier_drift`
    (cross-validated AUROC of window vs reference), kind data_drift.

    `potential_detection` is NannyML's alert: the error outside the reference chunks' mean ± 3 std
    (the band from reference rows held out of the PCA fit, see `ReconstructionSettings`), the AUROC
    above 0.65; `detected` a stricter bound (± 4 std; AUROC above 0.75). Windows under
    `min_window_rows` rows are `irrelevant`. Metrics: `reconstruction_error`,
    `reconstruction_error_lower`/`_upper` (the potential band; a lower bound of 0 means none) and
    `domain_classifier_auroc`. Needs the endpoint's stored reference sample (`reference=` when the
    endpoint is created); without it, a warning and no output.

    The classifier costs ~0.5 s a window (cross-validated boosting), the reconstruction a few ms:
    by default (`domain_classifier="on_reconstruction_drift"`) the classifier runs only on windows
    whose reconstruction drift is potential or worse (or cannot be computed), to confirm and
    explain it; "always" runs it on every window, "never" not at all.
    """

    NAME = "multivariate-drift"
    RESULT_NAMES = ("reconstruction_drift", "domain_classifier_drift")

    def __init__(
        self,
        *,
        min_window_rows: int = 100,
        reconstruction: ReconstructionSettings | None = None,
        auroc_potential: float = 0.65,
        auroc_detected: float = 0.75,
        auroc_alpha_potential: float = 0.01,
        auroc_alpha_detected: float = 0.001,
        classifier: ClassifierSettings | None = None,
        domain_classifier: str = "on_reconstruction_drift",
        cache_size: int = 1024,
    ) -> None:
        if min_window_rows < 10:
            raise MonitoringError(f"min_window_rows must be >= 10, got {min_window_rows}")
        if not 0.5 <= auroc_potential < auroc_detected < 1:
            raise MonitoringError(
                f"AUROC bounds must satisfy 0.5 <= potential ({auroc_potential}) "
                f"< detected ({auroc_detected}) < 1"
            )
        if not 0 < auroc_alpha_detected <= auroc_alpha_potential < 1:
            raise MonitoringError(
                f"AUROC alphas must satisfy 0 < detected ({auroc_alpha_detected}) "
                f"<= potential ({auroc_alpha_potential}) < 1"
            )
        self.min_window_rows = min_window_rows
        self.reconstruction = reconstruction or ReconstructionSettings()
        self.auroc_potential = auroc_potential
        self.auroc_detected = auroc_detected
        self.auroc_alpha_potential = auroc_alpha_potential
        self.auroc_alpha_detected = auroc_alpha_detected
        self.classifier = classifier or ClassifierSettings()
        if domain_classifier not in ("always", "on_reconstruction_drift", "never"):
            raise MonitoringError(
                "domain_classifier must be always, on_reconstruction_drift or never, "
                f"got {domain_classifier!r}"
            )
        self.domain_classifier = domain_classifier
        # (endpoint id, reference version) -> FittedReference
        self.fitted: FittedModelCache[tuple[str, int, str], FittedReference] = FittedModelCache(cache_size)

    def fit(self, reference: pd.DataFrame, features: list[str]) -> FittedReference:
        usable, skipped = usable_features(reference, features)
        if not usable:
            raise MonitoringError(f"no feature has a usable reference value (features {features})")
        reconstruction = (
            fit_reconstruction(reference, usable, self.reconstruction) if len(usable) >= 2 else None
        )
        classifier = fit_domain_classifier(reference, usable, self.classifier)
        return FittedReference(tuple(usable), tuple(skipped), reconstruction, classifier)

    def fitted_reference(self, ctx: MonitoringApplicationContext) -> FittedReference | None:
        key = ctx.reference_key
        cached = self.fitted.get(key)
        if cached is not None:
            return cached
        reference = ctx.reference_df
        if reference is None:
            return None

        def fit() -> FittedReference:
            try:
                fitted = self.fit(reference, ctx.feature_names)
            except MonitoringError as exc:
                raise MonitoringError(
                    f"endpoint {ctx.endpoint_name!r} ({ctx.endpoint_id}), reference version {key[1]}: {exc}"
                ) from exc
            ctx.logger.info(
                "fitted multivariate drift models",
                reference_rows=len(reference),
                features=len(fitted.features),
                pca_components=None if fitted.reconstruction is None else fitted.reconstruction.components,
            )
            return fitted

        return self.fitted.get_or_fit(key, fit)

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        ctx = monitoring_context
        fitted = self.fitted_reference(ctx)
        if fitted is None:
            ctx.logger.warning("endpoint has no stored reference sample; no multivariate drift computed")
            return None
        absent = [f for f in fitted.features if f not in ctx.sample_df.columns]
        if absent:
            raise MonitoringError(
                f"endpoint {ctx.endpoint_name!r}, window {ctx.window.key}: events lack feature(s) {absent}"
            )
        window = ctx.sample_df[list(fitted.features)]
        rows = len(window)
        if rows == 0:
            return None
        too_small = rows < self.min_window_rows
        outputs: list[Any] = []
        reconstruction_flagged = True
        if fitted.reconstruction is None:
            ctx.logger.warning("fewer than two usable features; no data reconstruction drift")
        else:
            reconstruction = self._reconstruction_outputs(fitted, fitted.reconstruction, window, too_small)
            reconstruction_flagged = any(
                isinstance(o, ModelMonitoringApplicationResult)
                and o.status >= ResultStatusApp.potential_detection
                for o in reconstruction
            )
            outputs += reconstruction
        run_classifier = self.domain_classifier == "always" or (
            self.domain_classifier == "on_reconstruction_drift" and reconstruction_flagged
        )
        if rows >= 2 and run_classifier:
            outputs += self._classifier_outputs(fitted, window, too_small)
        return outputs

    def _reconstruction_outputs(
        self, fitted: FittedReference, model: ReconstructionModel, window: pd.DataFrame, too_small: bool
    ) -> list[Any]:
        error = model.error(window)
        bands = model.bands(len(window))
        status = ResultStatusApp.irrelevant if too_small else bands.status(error)
        lower = bands.potential.lower
        upper = bands.potential.upper
        return [
            ModelMonitoringApplicationMetric("reconstruction_error", error),
            ModelMonitoringApplicationMetric("reconstruction_error_lower", lower or 0.0),
            ModelMonitoringApplicationMetric("reconstruction_error_upper", upper or 0.0),
            ModelMonitoringApplicationResult(
                name="reconstruction_drift",
                value=error,
                kind=ResultKindApp.data_drift,
                status=status,
                extra_data={
                    "rows": len(window),
                    "reference_mean": bands.mean,
                    "reference_std": bands.std,
                    "threshold_rule": bands.rule,
                    "reference_chunks": bands.chunks,
                    "reference_errors": "held_out" if model.held_out else "in_sample",
                    "potential": {"lower": lower, "upper": upper},
                    "detected": {"lower": bands.detected.lower, "upper": bands.detected.upper},
                    "pca_components": model.components,
                    "feature_count": len(fitted.features),
                    "skipped_features": list(fitted.skipped_features),
                },
            ),
        ]

    def _classifier_outputs(
        self, fitted: FittedReference, window: pd.DataFrame, too_small: bool
    ) -> list[Any]:
        score = fitted.classifier.score(window)
        bounds = auroc_bounds(
            score.reference_rows,
            score.window_rows,
            self.auroc_potential,
            self.auroc_detected,
            self.auroc_alpha_potential,
            self.auroc_alpha_detected,
        )
        status = ResultStatusApp.irrelevant if too_small else bounds.status(score.auroc)
        return [
            ModelMonitoringApplicationMetric("domain_classifier_auroc", score.auroc),
            ModelMonitoringApplicationResult(
                name="domain_classifier_drift",
                value=score.auroc,
                kind=ResultKindApp.data_drift,
                status=status,
                extra_data={
                    "rows": len(window),
                    "window_sample_rows": score.window_rows,
                    "reference_sample_rows": score.reference_rows,
                    "folds": score.folds,
                    "threshold_potential": bounds.potential,
                    "threshold_detected": bounds.detected,
                    "model": "sklearn HistGradientBoostingClassifier",
                    "feature_count": len(fitted.features),
                },
            ),
        ]
