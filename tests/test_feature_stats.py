import sys

import numpy as np
import pandas as pd
import pytest

from mm_dagster.stats.feature_stats import (
    bin_counts,
    category_counts,
    compute_feature_stats,
    reference_category_counts,
)


def test_numeric_schema_matches_mlrun() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan, 5.0]})
    stats = compute_feature_stats(df)["x"]
    assert stats["count"] == 4
    for key in ("mean", "std", "min", "25%", "50%", "75%", "max"):
        assert key in stats
    counts, edges = stats["hist"]
    assert len(counts) == 22 and len(edges) == 23
    assert edges[0] == -sys.float_info.max and edges[-1] == sys.float_info.max
    assert counts[0] == 0 and counts[-1] == 0
    assert sum(counts) == 4  # NaN is excluded
    np.testing.assert_allclose(edges[1:-1], np.linspace(1, 5, 21))
    assert stats["min"] == 1.0 and stats["max"] == 5.0


def test_reference_max_is_in_the_last_real_bin() -> None:
    stats = compute_feature_stats(pd.DataFrame({"x": [0.0, 1.0]}))["x"]
    counts = stats["hist"][0]
    assert counts[1] == 1 and counts[20] == 1 and counts[21] == 0


def test_window_binning_fix_and_mlrun_compatible_mode() -> None:
    edges = np.asarray(compute_feature_stats(pd.DataFrame({"x": [0.0, 1.0]}))["x"]["hist"][1])
    values = np.array([0.0, 1.0, 1.0, -3.0, 7.0])
    fixed = bin_counts(values, edges)
    compat = bin_counts(values, edges, mlrun_compatible=True)
    assert fixed[20] == 2 and fixed[21] == 1 and fixed[0] == 1
    assert compat[20] == 0 and compat[21] == 3
    assert fixed.sum() == compat.sum() == 5


def test_window_histogram_uses_reference_edges() -> None:
    ref = compute_feature_stats(pd.DataFrame({"x": np.arange(100.0)}))
    window = compute_feature_stats(pd.DataFrame({"x": [-5.0, 50.0, 500.0]}), reference=ref)
    assert window["x"]["hist"][1] == ref["x"]["hist"][1]
    counts = window["x"]["hist"][0]
    assert counts[0] == 1 and counts[-1] == 1 and sum(counts) == 3


def test_constant_column_gets_unit_width_bins() -> None:
    stats = compute_feature_stats(pd.DataFrame({"x": [3.0] * 10}))["x"]
    inner = stats["hist"][1][1:-1]
    assert inner[0] == pytest.approx(2.5) and inner[-1] == pytest.approx(3.5)
    assert sum(stats["hist"][0]) == 10


def test_all_nan_numeric_column_has_no_histogram() -> None:
    stats = compute_feature_stats(pd.DataFrame({"x": [np.nan, np.nan]}))["x"]
    assert stats == {"type": "numeric", "count": 0, "missing": 2, "non_finite": 0}


def test_missing_and_non_finite_values_are_counted_apart_and_never_set_edges() -> None:
    import json

    values = [1.0, 2.0, np.nan, None, np.inf, -np.inf, 3.0]
    stats = compute_feature_stats(pd.DataFrame({"x": values, "c": ["a", None, "b", "a", None, "a", "b"]}))
    x, c = stats["x"], stats["c"]
    assert (x["count"], x["missing"], x["non_finite"]) == (5, 2, 2)
    assert (x["min"], x["max"], x["mean"]) == (1.0, 3.0, 2.0)  # from the finite values only
    inner = x["hist"][1][1:-1]
    assert inner[0] == 1.0 and inner[-1] == 3.0
    counts = x["hist"][0]
    assert counts[0] == 1 and counts[-1] == 1 and sum(counts) == 5  # ±inf in the padded bins
    assert (c["count"], c["missing"]) == (5, 2)
    json.dumps(stats, allow_nan=False)  # no inf/NaN literals to store


def test_categorical_and_bool_columns() -> None:
    df = pd.DataFrame({"c": ["a", "b", "a", None], "flag": [True, False, True, True]})
    stats = compute_feature_stats(df)
    assert stats["c"]["type"] == "categorical"
    assert stats["c"]["count"] == 3 and stats["c"]["unique"] == 2
    assert stats["c"]["top"] == "a" and stats["c"]["freq"] == 2
    assert stats["c"]["freqs"] == {"a": 2, "b": 1}
    assert stats["flag"]["freqs"] == {"True": 3, "False": 1}


def test_unseen_categories_fall_in_one_extra_bucket() -> None:
    ref = compute_feature_stats(pd.DataFrame({"c": ["a", "b", "b"]}))["c"]
    assert list(ref["freqs"]) == ["b", "a"]
    counts = category_counts(ref, pd.Series(["a", "z", "y", "b", "b", None]))
    assert counts.tolist() == [2.0, 1.0, 0.0, 2.0]  # b, a, other (none beyond the top), unseen
    # "a" was seen once: Good-Turing expects a third of values to be new (1 of 3 rows).
    assert reference_category_counts(ref).tolist() == [2.0, 1.0, 0.0, 1.0]
