import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cityblock, euclidean
from scipy.special import rel_entr

from mm_dagster.stats.distances import hellinger, normalise, symmetric_kl, total_variation

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

U = np.array(
    [
        0.07101131,
        0.25138296,
        0.03700347,
        0.06843929,
        0.11482246,
        0.1339393,
        0.0503426,
        0.05639414,
        0.13406714,
        0.08259733,
    ]
)
T = np.array(
    [
        0.17719221,
        0.0949423,
        0.02982267,
        0.19927063,
        0.19288318,
        0.00137802,
        0.07398598,
        0.05829106,
        0.06771774,
        0.10451622,
    ]
)


def test_golden_vector() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            assert total_variation(T, U) == pytest.approx(0.3625321, abs=1e-6)
            assert hellinger(T, U) == pytest.approx(0.338189, abs=1e-6)
            assert symmetric_kl(T, U) == pytest.approx(1.097619, abs=1e-6)


def test_zero_bins_emit_no_warnings_and_follow_the_rules() -> None:
    t = np.array([0.0, 0.5, 0.5, 0.0])
    u = np.array([0.5, 0.5, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            kld = symmetric_kl(t, u)
            h = hellinger(t, u)
    # KL(t||u): 0.5*log(0.5/0.5) + 0.5*log(0.5/1e-4); KL(u||t): 0.5*log(0.5/1e-4) + 0
    expected = 2 * 0.5 * np.log(0.5 / 1e-4)
    assert kld == pytest.approx(expected)
    assert h == pytest.approx(np.sqrt(1 - 0.5))


def test_vectorised_over_rows() -> None:
    stacked_t = np.stack([T, U])
    stacked_u = np.stack([U, U])
    np.testing.assert_allclose(total_variation(stacked_t, stacked_u), [0.3625321, 0.0], atol=1e-6)


probabilities = (
    st.lists(st.floats(0, 1e3, allow_nan=False), min_size=2, max_size=30)
    .map(lambda xs: np.asarray(xs))
    .filter(lambda a: a.sum() > 0)
)


@settings(max_examples=200, deadline=None)
@given(probabilities, st.randoms())
def test_distance_properties(a: np.ndarray, rnd: object) -> None:
    b = np.asarray([rnd.random() for _ in a]) + 1e-9  # type: ignore[attr-defined]
    t, u = normalise(a), normalise(b)
    tvd = total_variation(t, u)
    h = hellinger(t, u)
    assert 0 <= tvd <= 1 + 1e-12
    assert 0 <= h <= 1 + 1e-12
    assert total_variation(t, u) == pytest.approx(total_variation(u, t))
    assert symmetric_kl(t, u) == pytest.approx(symmetric_kl(u, t))
    # Hellinger squared is bounded by TVD, and TVD by sqrt(2) * Hellinger. Hellinger is computed as
    # sqrt(1 - sum sqrt(t u)): the cancellation costs ~sqrt(machine epsilon) = 1.5e-8 near 0.
    assert h**2 <= tvd + 1e-9
    assert tvd <= np.sqrt(2) * h + 1e-7
    assert total_variation(t, t) == pytest.approx(0, abs=1e-12)
    assert symmetric_kl(t, t) == pytest.approx(0, abs=1e-9)


# -- cross-checked against scipy (declared as a dependency) ------------------------------------


def scipy_distances(t: np.ndarray, u: np.ndarray) -> tuple[float, float, float]:
    """The spec's three distances from scipy's own functions, on probability vectors."""
    tvd = 0.5 * cityblock(t, u)
    hellinger_ = euclidean(np.sqrt(t), np.sqrt(u)) / np.sqrt(2)  # sqrt(1 - sum sqrt(t u))
    # rel_entr(a, b) = a log(a / b), and 0 where a == 0 (the spec's dropped terms).
    kld = rel_entr(t, np.where(u == 0, 1e-4, u)).sum() + rel_entr(u, np.where(t == 0, 1e-4, t)).sum()
    return float(tvd), float(hellinger_), float(kld)


def test_golden_vector_with_scipy() -> None:
    tvd, h, kld = scipy_distances(T, U)
    assert tvd == pytest.approx(0.3625321, abs=1e-6)
    assert h == pytest.approx(0.338189, abs=1e-6)
    assert kld == pytest.approx(1.097619, abs=1e-6)


# Histograms as counts with empty bins (often aligned, often not): the zero-replacement cases.
histograms = (
    st.integers(2, 24)
    .flatmap(
        lambda bins: st.tuples(
            st.lists(st.one_of(st.just(0), st.integers(0, 10_000)), min_size=bins, max_size=bins),
            st.lists(st.one_of(st.just(0), st.integers(0, 10_000)), min_size=bins, max_size=bins),
        )
    )
    .filter(lambda tu: sum(tu[0]) > 0 and sum(tu[1]) > 0)
)


@settings(max_examples=300, deadline=None)
@given(histograms)
def test_distances_agree_with_scipy(counts: tuple[list[int], list[int]]) -> None:
    t, u = normalise(np.array(counts[0])), normalise(np.array(counts[1]))
    tvd, h, kld = scipy_distances(t, u)
    assert total_variation(t, u) == pytest.approx(tvd, abs=1e-12)
    assert hellinger(t, u) == pytest.approx(h, abs=1e-7)  # sqrt near 0 amplifies rounding
    assert symmetric_kl(t, u) == pytest.approx(kld, rel=1e-9, abs=1e-12)
    # Vectorised over rows: the same numbers, row by row.
    rows_t, rows_u = np.stack([t, u, t]), np.stack([u, u, t])
    np.testing.assert_allclose(symmetric_kl(rows_t, rows_u), [kld, 0.0, 0.0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(total_variation(rows_t, rows_u), [tvd, 0.0, 0.0], atol=1e-12)
