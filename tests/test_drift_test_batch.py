"""The batched homogeneity tests against the per-feature functions of stats.drift_test."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.stats.distances import normalise
from mm_dagster.stats.drift_methods import BUILT_IN_METHODS, DriftInput
from mm_dagster.stats.drift_test import merge_groups, merged, power_divergence_p_value
from mm_dagster.stats.drift_test_batch import homogeneity_tests

counts = st.lists(st.integers(0, 400), min_size=1, max_size=25)


@st.composite
def features(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, bool]:
    window = draw(counts)
    reference = draw(st.lists(st.integers(0, 2000), min_size=len(window), max_size=len(window)))
    return np.array(window, dtype=float), np.array(reference, dtype=float), draw(st.booleans())


def one_at_a_time(
    window: np.ndarray, reference: np.ndarray, categorical: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    groups = merge_groups(window, reference, categorical=categorical)
    w, r = merged(window, groups), merged(reference, groups)
    return power_divergence_p_value(w, r), w, r


@settings(max_examples=300, deadline=None)
@given(st.lists(features(), min_size=1, max_size=12))
def test_each_feature_gets_the_per_feature_groups_counts_and_p_value(family: list) -> None:
    tests = homogeneity_tests(*zip(*family, strict=True))
    for i, feature in enumerate(family):
        p_value, window, reference = one_at_a_time(*feature)
        batched_window, batched_reference = tests.merged(i)
        np.testing.assert_array_equal(batched_window, window)
        np.testing.assert_array_equal(batched_reference, reference)
        assert tests.p_values[i] == pytest.approx(p_value, rel=1e-9, abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(features(), st.lists(features(), max_size=8))
def test_a_features_numbers_do_not_depend_on_what_it_is_batched_with(feature: tuple, others: list) -> None:
    alone = homogeneity_tests(*zip(feature, strict=True))
    together = homogeneity_tests(*zip(*others, feature, strict=True))
    assert together.p_values[-1] == alone.p_values[0]
    np.testing.assert_array_equal(together.merged(len(others))[0], alone.merged(0)[0])


def test_features_without_a_testable_table_get_p_one() -> None:
    tests = homogeneity_tests(
        [np.array([0.0, 0.0]), np.array([30.0]), np.array([5.0, 0.0]), np.array([])],
        [np.array([10.0, 10.0]), np.array([40.0]), np.array([0.0, 0.0]), np.array([])],
        [False, False, True, False],
    )
    assert tests.p_values.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_a_large_shift_is_significant() -> None:
    window = np.array([300.0, 20, 10, 5, 1, 1, 1, 1, 1, 1])
    reference = np.full(10, 100.0)
    tests = homogeneity_tests([window, reference], [reference, reference], [False, False])
    assert tests.p_values[0] < 1e-12
    assert tests.p_values[1] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["tvd", "hellinger", "psi", "jensen_shannon"])
def test_row_measures_equal_the_methods_distance_on_zero_padded_rows(name: str) -> None:
    method = BUILT_IN_METHODS[name]
    rng = np.random.default_rng(7)
    rows = [rng.integers(0, 50, size=n).astype(float) + 1 for n in (3, 7, 12)]
    references = [rng.integers(0, 50, size=len(r)).astype(float) + 1 for r in rows]
    padded = np.zeros((3, 12))
    padded_references = np.zeros((3, 12))
    for i, (w, r) in enumerate(zip(rows, references, strict=True)):
        padded[i, : len(w)], padded_references[i, : len(r)] = w, r
    measured = method.row_measure(normalise(padded), normalise(padded_references))  # type: ignore[attr-defined]
    for i, (w, r) in enumerate(zip(rows, references, strict=True)):
        assert measured[i] == pytest.approx(method.distance(DriftInput("numeric", w, r)), rel=1e-12)


def _window_parts(seed: int, features: int, rows: int, shift: float) -> list:
    """One window's drift parts: `features` numeric columns and a categorical one of a
    reference of `rows` rows (fewer rows, fewer test bins), the window shifted by `shift`."""
    import pandas as pd

    from mm_dagster.stats.drift import feature_drift_parts
    from mm_dagster.stats.feature_stats import compute_feature_stats

    rng = np.random.default_rng(seed)
    columns = {f"x{i}": rng.normal(size=rows) for i in range(features)}
    reference = pd.DataFrame({**columns, "c": rng.choice(list("abcdefg"[: 2 + seed % 5]), rows)})
    stats = compute_feature_stats(reference)
    window = reference.sample(frac=0.5, random_state=seed).reset_index(drop=True)
    window[list(columns)] += shift
    return feature_drift_parts(stats, window, quantile_features={"x0"})


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**16), st.integers(2, 6), st.sampled_from([60, 400, 3000]), st.floats(0, 2)
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(sorted(BUILT_IN_METHODS)),
)
def test_windows_and_families_batched_together_get_exactly_their_own_numbers(
    windows: list[tuple[int, int, int, float]], method: str
) -> None:
    from mm_dagster.stats.drift import Family, families_verdicts, family_verdicts, with_distances
    from mm_dagster.stats.drift_methods import FeaturePolicy, method_registry

    parts = [_window_parts(*w) for w in windows]
    batched = with_distances(parts)
    assert batched == [with_distances([p])[0] for p in parts]
    methods = method_registry()
    policies = {"x0": FeaturePolicy(method=method), "x1": FeaturePolicy(exclude=True)}
    families = [Family(drifts, policies, 0.01 * (i + 1), 0.001) for i, drifts in enumerate(batched)]
    alone = [
        family_verdicts(
            f.drifts,
            methods=methods,
            policies=policies,
            alpha_potential=f.alpha_potential,
            alpha_detected=0.001,
        )
        for f in families
    ]
    assert families_verdicts(families, methods=methods) == alone
    assert all(
        len(v) == len([d for d in f.drifts if d.feature != "x1"])
        for v, f in zip(alone, families, strict=True)
    )
