"""The compiled count of known categories gives exactly pandas' value counts."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.stats import category_counting
from mm_dagster.stats.category_counting import KnownCategories, arrow_text, known_counts, rest_value_counts
from mm_dagster.stats.feature_stats import bucket_counts

# Short and long (over one 8-byte word), empty, multi-byte, and ones sharing a prefix.
texts = st.one_of(
    st.sampled_from(["", "a", "alpha", "alphabet", "alphabets", "ünïcødé", "x" * 17, "x" * 16, "beta"]),
    st.text(max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(texts, st.none()), max_size=300),
    st.lists(texts, max_size=12, unique=True),
    st.integers(0, 5),
    st.booleans(),
)
def test_known_counts_and_the_rest_equal_pandas_value_counts(
    values: list[str | None], names: list[str], cut: int, large: bool
) -> None:
    array = pa.array(values, type=pa.large_string() if large else pa.string())
    # Several chunks, the first ones slices of a larger buffer (offsets not starting at zero).
    chunked = pa.chunked_array([array.slice(0, cut), array.slice(cut)], type=array.type)
    known = KnownCategories.of(names)
    counts, rest = known_counts(chunked, known)
    expected = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
    assert counts.tolist() == [int(expected.get(name, 0)) for name in names]
    rest_names, rest_counts = rest_value_counts(rest)
    assert dict(zip(rest_names, rest_counts.tolist(), strict=True)) == {
        value: int(count) for value, count in expected.items() if value not in names
    }


def test_a_buffer_not_aligned_to_words_is_read_the_same() -> None:
    # Strings whose bytes end in the buffer's last partial word, and a sliced view.
    values = [f"v{i % 7}" * (1 + i % 3) for i in range(101)]
    array = pa.array(values).slice(3, 90)
    counts, rest = known_counts(pa.chunked_array([array]), KnownCategories.of(["v1", "v2v2", "v6v6v6"]))
    expected = pd.Series(values[3:93]).value_counts()
    assert counts.tolist() == [int(expected.get(n, 0)) for n in ("v1", "v2v2", "v6v6v6")]
    assert sum(rest_value_counts(rest)[1]) == 90 - counts.sum()


@pytest.mark.parametrize(
    "dtype", ["string[pyarrow]", pd.ArrowDtype(pa.string()), pd.ArrowDtype(pa.large_string())]
)
def test_bucket_counts_of_arrow_strings_equal_those_of_python_strings(
    dtype: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(category_counting, "KERNEL_MIN_VALUES", 10)
    rng = np.random.default_rng(0)
    pool = np.array(
        ["alpha", "beta", "gamma", "rare-but-seen", "never", "a much longer category"], dtype=object
    )
    values = pd.Series(pool[rng.integers(0, pool.size, 500)])
    values[::13] = None
    positions = {"alpha": 0, "a much longer category": 1, "beta": 2}
    arrow = values.astype(dtype)
    assert arrow_text(arrow) is not None
    assert arrow_text(values) is None  # Python objects: counted by value_counts
    np.testing.assert_array_equal(
        bucket_counts(positions, None, arrow), bucket_counts(positions, None, values)
    )


def test_more_unseen_values_than_the_first_pass_keeps_are_all_handed_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(category_counting, "UNKNOWN_ROWS_KEPT", 3)
    values = ["seen", "new-1", "new-2", "seen", "new-1", None, "new-3", "new-4", "seen"]
    counts, rest = known_counts(pa.chunked_array([pa.array(values)]), KnownCategories.of(["seen"]))
    assert counts.tolist() == [3]
    names, rest_counts = rest_value_counts(rest)
    assert dict(zip(names, rest_counts.tolist(), strict=True)) == {
        "new-1": 2,
        "new-2": 1,
        "new-3": 1,
        "new-4": 1,
    }


def test_short_columns_are_left_to_value_counts() -> None:
    assert arrow_text(pd.Series(["a", "b"], dtype="string[pyarrow]")) is None
