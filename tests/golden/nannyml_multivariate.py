"""Golden numbers for the multivariate drift app, from NannyML 0.13 (run once, in a side venv).

    /work/nannyml-venv/bin/python tests/golden/nannyml_multivariate.py

Never imported by the tests (nannyml is not a dependency). Loads NannyML's shipped synthetic car
loan dataset, runs `DataReconstructionDriftCalculator` and `DomainClassifierCalculator` with
explicit size chunking, and writes `nannyml_multivariate.json` (chunks' values, thresholds, alerts)
and `nannyml_car_loan.parquet` (the feature columns of reference then analysis, the tests' input).
"""

import json
import os
from pathlib import Path

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML posts usage statistics otherwise

import nannyml as nml
import pandas as pd

HERE = Path(__file__).parent
FEATURES = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
]
CHUNK_SIZE = 5000


def chunk_rows(result: pd.DataFrame, metric: str) -> list[dict[str, object]]:
    rows = []
    for _, row in result.iterrows():
        rows.append(
            {
                "period": row[("chunk", "period")],
                "start_index": int(row[("chunk", "start_index")]),
                "end_index": int(row[("chunk", "end_index")]),
                "value": float(row[(metric, "value")]),
                "lower_threshold": float(row[(metric, "lower_threshold")]),
                "upper_threshold": float(row[(metric, "upper_threshold")]),
                "alert": bool(row[(metric, "alert")]),
            }
        )
    return rows


def main() -> None:
    reference, analysis, _ = nml.load_synthetic_car_loan_dataset()
    reconstruction = nml.DataReconstructionDriftCalculator(
        column_names=FEATURES, timestamp_column_name="timestamp", chunk_size=CHUNK_SIZE
    )
    reconstruction.fit(reference)
    reconstruction_result = reconstruction.calculate(analysis).to_df()

    classifier = nml.DomainClassifierCalculator(
        feature_column_names=FEATURES, timestamp_column_name="timestamp", chunk_size=CHUNK_SIZE
    )
    classifier.fit(reference)
    classifier_result = classifier.calculate(analysis).to_df()

    golden = {
        "nannyml_version": nml.__version__,
        "dataset": "nannyml.load_synthetic_car_loan_dataset()",
        "features": FEATURES,
        "continuous": reconstruction.continuous_column_names,
        "categorical": reconstruction.categorical_column_names,
        "chunk_size": CHUNK_SIZE,
        "reference_rows": len(reference),
        "analysis_rows": len(analysis),
        "reconstruction": {
            "n_components": 0.65,
            "pca_components_kept": int(reconstruction._pca.n_components_),
            "threshold": "reference chunks' mean +/- 3 std (ddof=0), lower limit 0",
            "chunks": chunk_rows(reconstruction_result, "reconstruction_error"),
        },
        "domain_classifier": {
            "model": "lightgbm.LGBMClassifier, NannyML's default hyperparameters",
            "cv_folds": 5,
            "threshold": "constant: lower 0.45, upper 0.65",
            "chunks": chunk_rows(classifier_result, "domain_classifier_auroc"),
        },
    }
    (HERE / "nannyml_multivariate.json").write_text(json.dumps(golden, indent=1) + "\n")
    # Both sets sorted by timestamp, as NannyML's chunker saw them.
    frames = [
        df.sort_values("timestamp", kind="stable")[FEATURES].assign(period=period)
        for df, period in ((reference, "reference"), (analysis, "analysis"))
    ]
    data = pd.concat(frames, ignore_index=True)
    for column in ("salary_range", "size_of_downpayment", "period"):
        data[column] = data[column].astype("category")
    data.to_parquet(HERE / "nannyml_car_loan.parquet", index=False, compression="zstd")


if __name__ == "__main__":
    main()
