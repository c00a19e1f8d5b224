"""Golden numbers for CBPE and DLE from NannyML 0.13 on its shipped synthetic datasets.

Run with the side virtualenv that has NannyML (never imported by the tests; NannyML needs Python
< 3.13 and is not a dependency of mm_dagster):

    /work/nannyml-venv/bin/python tests/golden/nannyml_performance.py

Writes, next to this file:
  nannyml_performance.json      per dataset and chunk (reference and analysis periods): NannyML's
                                estimate, sampling error, confidence band and realized value of
                                every measure, with the chunk's row range; per classification
                                dataset, which classes NannyML calibrated; the numpy version and
                                the CPU's SIMD extensions NannyML ran with
  nannyml_<dataset>.parquet     the columns the tests need (model outputs, target, DLE features),
                                reference rows then analysis rows, in NannyML's order

NannyML's calibration check sorts scores with numpy's default (unstable) argsort, whose order of
tied scores depends on the SIMD code numpy picks for the CPU (AVX-512, AVX2 or none). The
multiclass scores have two decimals, so ties straddle its equal-count bin edges and its decision
for `prepaid_card` differs between machines: with numpy 2.4.6 it calibrates on AVX2 and on
baseline x86-64, but did not on the machine that made the first version of this file (no AVX2 or
baseline order reproduces that one; presumably AVX-512). mm_dagster's check does not depend on the
order of ties (mm_dagster.stats.cbpe); this file records the machine's numpy SIMD targets and
NannyML's calibration decisions, which the tests compare with ours first.
"""

import json
import os
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import pandas as pd

# NannyML 0.13 predates pandas 3's Arrow-backed strings (its categorical handling reshapes columns).
if int(pd.__version__.split(".")[0]) >= 3:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.set_option("future.infer_string", False)

import nannyml as nml
import numpy as np

HERE = Path(__file__).parent
CLASSIFICATION_METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]
REGRESSION_METRICS = ["mae", "rmse"]
MULTICLASS_CLASSES = ["prepaid_card", "highstreet_card", "upmarket_card"]
CAR_FEATURES = ["car_age", "km_driven", "price_new", "accident_count", "door_count", "fuel", "transmission"]


def chunks_of(result: Any, metrics: list[str]) -> list[dict[str, Any]]:
    frame = result.to_df()
    rows = []
    for _, row in frame.iterrows():
        rows.append(
            {
                "period": row[("chunk", "period")],
                "start": int(row[("chunk", "start_index")]),
                "end": int(row[("chunk", "end_index")]) + 1,
                "metrics": {
                    m: {
                        "estimated": float(row[(m, "value")]),
                        "sampling_error": float(row[(m, "sampling_error")]),
                        "lower": float(row[(m, "lower_confidence_boundary")]),
                        "upper": float(row[(m, "upper_confidence_boundary")]),
                        "realized": float(row[(m, "realized")]),
                    }
                    for m in metrics
                },
            }
        )
    return rows


def calibrated_classes(estimator: Any) -> dict[str, bool]:
    """Per score column's class, whether NannyML's CBPE calibrates it (binary: the positive class)."""
    if isinstance(estimator.y_pred_proba, str):
        return {"1": bool(estimator.needs_calibration)}
    return {
        str(c): not isinstance(calibrator, nml.calibration.NoopCalibrator)
        for c, calibrator in estimator._calibrators.items()
    }


def simd_extensions() -> list[str]:
    """numpy's dispatch targets this CPU has (`np.show_runtime()`'s "found"): they decide which
    argsort numpy runs, hence the order of tied scores in NannyML's calibration check."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def with_targets(analysis: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    return analysis.merge(targets, on="id", how="left", validate="one_to_one")


def save_columns(name: str, reference: pd.DataFrame, analysis: pd.DataFrame, columns: list[str]) -> str:
    frame = pd.concat([reference[columns], analysis[columns]], ignore_index=True)
    frame.insert(0, "period", ["reference"] * len(reference) + ["analysis"] * len(analysis))
    path = HERE / f"nannyml_{name}.parquet"
    frame.to_parquet(path, index=False, compression="zstd")
    return path.name


def binary() -> dict[str, Any]:
    reference, analysis, targets = nml.load_synthetic_binary_classification_dataset()
    analysis = with_targets(analysis, targets)
    chunk_size = 5000
    estimator = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="work_home_actual",
        problem_type="classification_binary",
        metrics=CLASSIFICATION_METRICS,
        chunk_size=chunk_size,
    )
    estimator.fit(reference)
    return {
        "task": {
            "kind": "binary",
            "prediction": "y_pred",
            "target": "work_home_actual",
            "scores": {"1": "y_pred_proba"},
        },
        "chunk_size": chunk_size,
        "calibrated": calibrated_classes(estimator),
        "data": save_columns("binary", reference, analysis, ["y_pred_proba", "y_pred", "work_home_actual"]),
        "chunks": chunks_of(estimator.estimate(analysis), CLASSIFICATION_METRICS),
    }


def multiclass() -> dict[str, Any]:
    reference, analysis, targets = nml.load_synthetic_multiclass_classification_dataset()
    analysis = with_targets(analysis, targets)
    chunk_size = 6000
    scores = {c: f"y_pred_proba_{c}" for c in MULTICLASS_CLASSES}
    estimator = nml.CBPE(
        y_pred_proba=scores,
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_multiclass",
        metrics=CLASSIFICATION_METRICS,
        chunk_size=chunk_size,
    )
    estimator.fit(reference)
    return {
        "task": {"kind": "multiclass", "prediction": "y_pred", "target": "y_true", "scores": scores},
        "chunk_size": chunk_size,
        "calibrated": calibrated_classes(estimator),
        "data": save_columns("multiclass", reference, analysis, [*scores.values(), "y_pred", "y_true"]),
        "chunks": chunks_of(estimator.estimate(analysis), CLASSIFICATION_METRICS),
    }


def regression() -> dict[str, Any]:
    reference, analysis, targets = nml.load_synthetic_car_price_dataset()
    analysis = with_targets(analysis, targets)
    chunk_size = 6000
    estimator = nml.DLE(
        feature_column_names=CAR_FEATURES,
        y_pred="y_pred",
        y_true="y_true",
        metrics=REGRESSION_METRICS,
        chunk_size=chunk_size,
    )
    estimator.fit(reference)
    return {
        "task": {"kind": "regression", "prediction": "y_pred", "target": "y_true", "scores": {}},
        "features": CAR_FEATURES,
        "chunk_size": chunk_size,
        "data": save_columns("regression", reference, analysis, [*CAR_FEATURES, "y_pred", "y_true"]),
        "chunks": chunks_of(estimator.estimate(analysis), REGRESSION_METRICS),
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    golden = {
        "nannyml_version": nml.__version__,
        "pandas_version": pd.__version__,
        "numpy_version": np.__version__,
        "numpy_simd": simd_extensions(),
        "band_sigmas": 3,
        "datasets": {"binary": binary(), "multiclass": multiclass(), "regression": regression()},
    }
    path = HERE / "nannyml_performance.json"
    path.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
