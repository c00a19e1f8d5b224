"""Multivariate drift: PCA data-reconstruction error and a domain classifier (scikit-learn).

Both see what per-feature tests cannot: a change in how features move together.

**Data reconstruction** (NannyML 0.13's `DataReconstructionDriftCalculator`): on the reference,
impute and frequency-encode (`FrequencyEncoding`), standard-scale, and fit a PCA keeping the
fewest components that explain `variance_share` (0.65) of the variance (at most n_features - 1,
so the error is not identically 0). A row's error is the Euclidean distance between its scaled
vector and its PCA reconstruction; a window's value is the mean over its rows. The band is
NannyML's: the reference cut into consecutive chunks of the window's size, mean ± k · std (ddof 0)
of the chunk means (k = 3 is NannyML's alert), no lower bound when it falls at or below 0. With
fewer than `min_reference_chunks` complete chunks, the i.i.d. std of the difference of the two
means is used instead. Two changes by default, both off in `ReconstructionSettings.nannyml()`: the band
comes from reference rows held out of the fit (in-sample errors are biased low, so large windows
alarm on no drift), and its std is never below the i.i.d. value.

**Domain classifier** (NannyML 0.13's `DomainClassifierCalculator`): a classifier learns to tell
window rows from reference rows; its cross-validated AUROC (out-of-fold predictions of all folds
pooled, stratified k-fold) is 0.5 when the two are alike and tends to 1 as they separate. NannyML
uses LightGBM (100 trees) on the whole reference plus the chunk; here scikit-learn's
`HistGradientBoostingClassifier` (the same histogram gradient boosting with LightGBM's default
31 leaves and learning rate 0.1, but 50 trees: on NannyML's data and in bench/multivariate.py the
AUROC moved by < 0.01 for a third less time) on bounded random samples of both (2,000 rows each by
default), so its cost does not grow with the window. Bounds: NannyML's constant 0.65, raised for
small samples to 0.5 + z(alpha) * 1.5 * sd0 where sd0 = sqrt((n1 + n2 + 1) / (12 n1 n2)) is the
AUROC's null standard deviation (Mann-Whitney; cross-validation widens it, measured up to 1.47x),
so noise on a small window does not alarm.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.tabular_encoding import FrequencyEncoding, OrdinalEncoding

PCA_RANDOM_STATE = 16  # NannyML's
# The pooled out-of-fold AUROC of windows with no drift spreads wider than Mann-Whitney's null:
# measured 1.45x at 30 window rows, 1.47x at 100, 1.33x at 300, 1.27x at 1,000 (2,000 reference
# rows, 20 features, 30 windows each). The significance bounds use this factor.
CV_AUROC_NULL_STD_FACTOR = 1.5


@dataclass(frozen=True)
class Band:
    """Where a window's value is expected; `lower`/`upper` None where there is no bound."""

    lower: float | None
    upper: float | None

    def outside(self, value: float) -> bool:
        """NannyML's alert rule: not (lower < value < upper)."""
        return (self.lower is not None and value <= self.lower) or (
            self.upper is not None and value >= self.upper
        )


@dataclass(frozen=True)
class ReconstructionBands:
    mean: float
    std: float
    potential: Band
    detected: Band
    rule: str  # "reference_chunks" or "row_errors"
    chunks: int

    def status(self, value: float) -> ResultStatusApp:
        if self.detected.outside(value):
            return ResultStatusApp.detected
        if self.potential.outside(value):
            return ResultStatusApp.potential_detection
        return ResultStatusApp.no_detection


def std_band(mean: float, std: float, multiplier: float, lower_limit: float = 0.0) -> Band:
    """NannyML's `StandardDeviationThreshold` with its lower limit (a bound at or below it: none)."""
    lower = mean - multiplier * std
    return Band(None if lower <= lower_limit else lower, mean + multiplier * std)


def chunk_means(values: np.ndarray, chunk_size: int) -> np.ndarray:
    """Means of the consecutive complete chunks of `chunk_size` values."""
    if chunk_size < 1:
        raise MonitoringError(f"chunk size must be >= 1, got {chunk_size}")
    chunks = len(values) // chunk_size
    means: np.ndarray = values[: chunks * chunk_size].reshape(chunks, chunk_size).mean(axis=1)
    return means


@dataclass(frozen=True)
class ReconstructionSettings:
    variance_share: float = 0.65
    # Share of the reference kept out of the fit; the band comes from these rows' errors, which
    # is what a window from the reference distribution gets. None: NannyML's way (fit on all rows,
    # band from the same rows' in-sample errors; these sit below a new sample's, since the PCA
    # keeps the sample's own directions of largest variance: measured 9 std too low on a
    # 100k-row window of 20 independent features, so large windows alarm on no drift).
    held_out_share: float | None = 0.5
    # The std of a window's mean minus the reference's is at least its i.i.d. value,
    # std(row errors) * sqrt(1 / window rows + 1 / reference rows) (a few reference chunks can
    # underestimate it). False: NannyML's chunk std alone.
    iid_std_floor: bool = True
    min_reference_chunks: int = 10
    potential_std: float = 3.0  # NannyML's alert
    detected_std: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.variance_share < 1:
            raise MonitoringError(f"variance_share must be in (0, 1), got {self.variance_share}")
        if self.held_out_share is not None and not 0 < self.held_out_share < 1:
            raise MonitoringError(f"held_out_share must be in (0, 1) or None, got {self.held_out_share}")
        if self.min_reference_chunks < 2:
            raise MonitoringError(f"min_reference_chunks must be >= 2, got {self.min_reference_chunks}")
        if not 0 < self.potential_std < self.detected_std:
            raise MonitoringError(
                "reconstruction std multipliers must satisfy 0 < potential "
                f"({self.potential_std}) < detected ({self.detected_std})"
            )

    @classmethod
    def nannyml(cls) -> "ReconstructionSettings":
        """NannyML 0.13's `DataReconstructionDriftCalculator` exactly (the golden tests use it)."""
        return cls(held_out_share=None, iid_std_floor=False)


@dataclass(frozen=True, eq=False)
class ReconstructionModel:
    """Encoding, scaler and PCA fitted on a reference, plus reference row errors for the band."""

    encoding: FrequencyEncoding
    scaler: StandardScaler
    pca: PCA
    reference_errors: np.ndarray  # of the held-out rows (in-sample rows if none), in order
    settings: ReconstructionSettings
    held_out: bool

    @property
    def components(self) -> int:
        return int(self.pca.n_components_)

    def row_errors(self, frame: pd.DataFrame) -> np.ndarray:
        data = self.scaler.transform(self.encoding.transform(frame))
        restored = self.pca.inverse_transform(self.pca.transform(data))
        errors: np.ndarray = np.linalg.norm(data - restored, axis=1)
        return errors

    def error(self, frame: pd.DataFrame) -> float:
        if len(frame) == 0:
            raise MonitoringError("reconstruction error of an empty window")
        return float(self.row_errors(frame).mean())

    def bands(self, window_rows: int) -> ReconstructionBands:
        """The bands for a window of `window_rows` rows (see the module docstring)."""
        settings = self.settings
        errors = self.reference_errors
        # Two-sample: the window's mean and the reference rows' mean both vary.
        iid_std = (
            float(errors.std(ddof=1)) * math.sqrt(1 / window_rows + 1 / len(errors))
            if len(errors) > 1
            else 0.0
        )
        means = chunk_means(errors, window_rows)
        if len(means) >= settings.min_reference_chunks:
            mean, std, rule = float(means.mean()), float(means.std()), "reference_chunks"
            if settings.iid_std_floor:
                std = max(std, iid_std)
        else:
            mean, std, rule = float(errors.mean()), iid_std, "row_errors"
        return ReconstructionBands(
            mean,
            std,
            std_band(mean, std, settings.potential_std),
            std_band(mean, std, settings.detected_std),
            rule,
            len(means),
        )


def held_out_split(rows: int, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows), each in increasing order, held-out = round(share * rows)."""
    held = np.zeros(rows, dtype=bool)
    held[np.random.default_rng(seed).permutation(rows)[: round(share * rows)]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def fit_reconstruction(
    reference: pd.DataFrame, columns: list[str], settings: ReconstructionSettings | None = None
) -> ReconstructionModel:
    """Fit the data-reconstruction model on `reference[columns]` (at least two columns)."""
    settings = settings or ReconstructionSettings()
    if len(columns) < 2:
        raise MonitoringError(f"data reconstruction needs at least 2 features, got {columns}")
    fit_rows, held_rows = np.arange(len(reference)), np.arange(0)
    if settings.held_out_share is not None:
        fit_rows, held_rows = held_out_split(len(reference), settings.held_out_share)
    held_out = len(held_rows) >= 2 and len(fit_rows) >= 2
    fit_part = reference.iloc[fit_rows] if held_out else reference
    if len(fit_part) < 2:
        raise MonitoringError(f"data reconstruction needs at least 2 reference rows, got {len(reference)}")
    encoding = FrequencyEncoding.fit(fit_part, columns)
    scaler = StandardScaler()
    data = scaler.fit_transform(encoding.transform(fit_part))
    pca = PCA(n_components=settings.variance_share, random_state=PCA_RANDOM_STATE).fit(data)
    if pca.n_components_ >= len(columns):
        pca = PCA(n_components=len(columns) - 1, random_state=PCA_RANDOM_STATE).fit(data)
    model = ReconstructionModel(encoding, scaler, pca, np.empty(0), settings, held_out)
    errors = model.row_errors(reference.iloc[held_rows] if held_out else reference)
    return ReconstructionModel(encoding, scaler, pca, errors, settings, held_out)


def auroc_null_std(reference_rows: int, window_rows: int) -> float:
    """Standard deviation of the AUROC of an uninformative score (Mann-Whitney U / (n1 n2))."""
    n1, n2 = reference_rows, window_rows
    return math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))


@dataclass(frozen=True)
class AurocBounds:
    potential: float
    detected: float

    def status(self, auroc: float) -> ResultStatusApp:
        """NannyML's rule: above the bound (strictly)."""
        if auroc > self.detected:
            return ResultStatusApp.detected
        if auroc > self.potential:
            return ResultStatusApp.potential_detection
        return ResultStatusApp.no_detection


def auroc_bounds(
    reference_rows: int,
    window_rows: int,
    potential: float = 0.65,
    detected: float = 0.75,
    alpha_potential: float = 0.01,
    alpha_detected: float = 0.001,
) -> AurocBounds:
    """Each bound: the larger of its effect floor and the AUROC's one-sided 1 - alpha null quantile."""
    std = CV_AUROC_NULL_STD_FACTOR * auroc_null_std(reference_rows, window_rows)
    return AurocBounds(
        max(potential, 0.5 + float(norm.isf(alpha_potential)) * std),
        max(detected, 0.5 + float(norm.isf(alpha_detected)) * std),
    )


@dataclass(frozen=True)
class ClassifierSettings:
    max_rows: int = 2000  # per side: the reference sample and the window sample
    folds: int = 5
    max_iter: int = 50
    max_leaf_nodes: int = 31
    learning_rate: float = 0.1
    seed: int = 0
    # OpenMP threads per fit (None: the library default, one per core). 1 by default: when apps,
    # runs or workers share the cores, OpenMP's spin-waiting threads oversubscribe them (measured on
    # a loaded 2-core machine: 38 s for one fit with 2 threads, 0.85 s with 1). The limit is
    # process-wide while a window is scored (threadpoolctl).
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.max_rows < 10:
            raise MonitoringError(f"classifier max_rows must be >= 10, got {self.max_rows}")
        if self.folds < 2:
            raise MonitoringError(f"classifier folds must be >= 2, got {self.folds}")
        if self.max_iter < 1:
            raise MonitoringError(f"classifier max_iter must be >= 1, got {self.max_iter}")
        if self.threads is not None and self.threads < 1:
            raise MonitoringError(f"classifier threads must be >= 1 or None, got {self.threads}")


@dataclass(frozen=True)
class DomainClassifierScore:
    auroc: float
    reference_rows: int
    window_rows: int
    folds: int


def bounded_sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= max_rows else frame.sample(max_rows, random_state=seed)


@dataclass(frozen=True, eq=False)
class DomainClassifier:
    """A bounded, encoded reference sample; scores windows by cross-validated AUROC."""

    encoding: OrdinalEncoding
    reference_sample: np.ndarray
    settings: ClassifierSettings

    def score_matrix(self, window: np.ndarray) -> DomainClassifierScore:
        """AUROC of reference-sample vs `window` rows (already encoded and bounded)."""
        n_ref, n_win = len(self.reference_sample), len(window)
        folds = min(self.settings.folds, n_ref, n_win)
        if folds < 2:
            raise MonitoringError(f"domain classifier needs >= 2 rows on each side, got {n_ref} and {n_win}")
        x = np.vstack([self.reference_sample, window])
        y = np.r_[np.zeros(n_ref), np.ones(n_win)]
        mask = self.encoding.categorical_mask
        model = HistGradientBoostingClassifier(
            max_iter=self.settings.max_iter,
            max_leaf_nodes=self.settings.max_leaf_nodes,
            learning_rate=self.settings.learning_rate,
            early_stopping=False,
            categorical_features=mask if mask.any() else None,
            random_state=self.settings.seed,
        )
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.settings.seed)
        with threadpool_limits(limits=self.settings.threads, user_api="openmp"):
            scores = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
        return DomainClassifierScore(float(roc_auc_score(y, scores)), n_ref, n_win, folds)

    def score(self, frame: pd.DataFrame) -> DomainClassifierScore:
        sample = bounded_sample(frame, self.settings.max_rows, self.settings.seed)
        return self.score_matrix(self.encoding.transform(sample))


def fit_domain_classifier(
    reference: pd.DataFrame, columns: list[str], settings: ClassifierSettings | None = None
) -> DomainClassifier:
    settings = settings or ClassifierSettings()
    if not columns:
        raise MonitoringError("domain classifier needs at least 1 feature")
    encoding = OrdinalEncoding.fit(reference, columns)
    sample = bounded_sample(reference, settings.max_rows, settings.seed)
    return DomainClassifier(encoding, encoding.transform(sample), settings)
