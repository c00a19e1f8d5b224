"""The compiled column summaries equal numpy's mean/std/min/max of each column's finite values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from mm_dagster.stats.column_summary import column_summaries, summary_table


def numpy_summaries(block: np.ndarray) -> list[dict[str, float]]:
    """The reference: numpy on each column's finite values."""
    out: list[dict[str, float]] = []
    for column in block.T:
        finite = column[np.isfinite(column)]
        out.append(
            {"mean": finite.mean(), "std": finite.std(), "min": finite.min(), "max": finite.max()}
            if finite.size
            else {}
        )
    return out


values = st.one_of(
    st.floats(min_value=-1e9, max_value=1e9, width=64), st.sampled_from([np.nan, np.inf, -np.inf])
)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40), elements=values))
def test_each_column_as_numpy_summarises_its_finite_values(block: np.ndarray) -> None:
    got = column_summaries(block)
    expected = numpy_summaries(block)
    assert len(got) == block.shape[1]
    for g, e in zip(got, expected, strict=True):
        assert g.keys() == e.keys()
        for key in e:
            assert g[key] == pytest.approx(e[key], rel=1e-9, abs=1e-6), key
            assert type(g[key]) is float


def test_c_and_fortran_order_and_views_give_the_same_summaries() -> None:
    rng = np.random.default_rng(0)
    block = rng.normal(5.0, 2.0, (1000, 6))
    block[::7, 2] = np.nan
    block[3, 4] = np.inf
    block[:, 5] = np.nan
    expected = summary_table(np.asfortranarray(block))
    assert np.array_equal(summary_table(np.ascontiguousarray(block)), expected)
    assert np.array_equal(summary_table(block[:, 1:4]), expected[1:4])
    assert expected[5].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]  # no finite value
    assert column_summaries(block)[5] == {}
    assert expected[2, 0] == 1000 - len(range(0, 1000, 7))


def test_a_block_that_is_not_two_dimensional_is_refused() -> None:
    with pytest.raises(ValueError, match="rows x columns"):
        summary_table(np.zeros(3))
