"""Correlations against values computed independently here (numpy, brute force)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.stats import TableError, correlate_table, correlation, statistic
from scipy import stats


def _ranks(v):
    """Average ranks (1-based), ties sharing the mean of their positions: by hand."""
    v = np.asarray(v, float)
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = np.empty(len(v))
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _tau_b(x, y):
    """Kendall tau-b by counting pairs."""
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / np.sqrt((conc + disc + tx) * (conc + disc + ty))


X = [0.61, 0.70, 0.70, 0.75, 0.80, 0.80, 0.82, 0.90]  # ties in x
Y = [0.40, 0.42, 0.45, 0.45, 0.52, 0.50, 0.58, 0.57]  # ties in y


def test_values_match_independent_computations_with_ties():
    assert statistic("pearson", X, Y) == pytest.approx(np.corrcoef(X, Y)[0, 1])
    assert statistic("spearman", X, Y) == pytest.approx(np.corrcoef(_ranks(X), _ranks(Y))[0, 1])
    assert statistic("kendall", X, Y) == pytest.approx(_tau_b(np.array(X), np.array(Y)))


def test_permutation_p_value_is_exact_for_small_n():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.0, 4.0, 3.0, 5.0]
    r = np.corrcoef(x, y)[0, 1]
    null = [np.corrcoef(x, [y[i] for i in perm])[0, 1] for perm in itertools.permutations(range(5))]
    expected = np.mean(np.abs(null) >= abs(r) - 1e-12)
    c = correlation("pearson", x, y, bootstrap=100)
    assert c.exact_p and c.p == pytest.approx(expected)


def test_perfect_and_uncorrelated_cases():
    x = np.arange(6.0)
    perfect = correlation("pearson", x, 2 * x + 1, bootstrap=500)
    # of all 6! orders of y only the identity and the reversed one reach |r| = 1
    assert perfect.value == pytest.approx(1.0) and perfect.p == pytest.approx(2 / 720)
    assert perfect.ci is None and "n = 6" in perfect.warning  # too few points for an interval
    x = np.arange(10.0)
    flat = correlation("pearson", x, 2 * x + 1, bootstrap=200, permutations=200)
    assert flat.ci == pytest.approx([1.0, 1.0]) and flat.warning is None  # every resample gives r = 1
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    none = correlation("spearman", a, b, bootstrap=500, permutations=2000)
    assert abs(none.value) < 0.15 and none.p > 0.05 and none.ci[0] < 0 < none.ci[1]


def test_wilson_interval_at_zero_successes_is_not_zero_width():
    """0/122: a percentile bootstrap says [0, 0]; Wilson's upper bound is z^2 / (n + z^2)."""
    from scipy import stats as sps

    from genrm.metrics import wilson_interval

    z2 = sps.norm.ppf(0.975) ** 2
    lo, hi = wilson_interval(0, 122)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(z2 / (122 + z2)) and hi > 0.03
    # the textbook formula at 61/122
    p, n = 0.5, 122
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), np.sqrt(z2) / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    assert wilson_interval(61, 122) == pytest.approx([centre - half, centre + half])
    assert wilson_interval(0, 0) is None


def test_three_points_give_a_value_and_a_warning_not_an_interval():
    df = pd.DataFrame({"variant": ["a", "b", "c"], "x": [0.1, 0.5, 0.3], "y": [0.2, 0.6, 0.5]})
    out = correlate_table(df, ["x"], "y", "variant")["x"]
    assert out["n"] == 3 and out["pearson"] == pytest.approx(np.corrcoef([0.1, 0.5, 0.3], [0.2, 0.6, 0.5])[0, 1])
    assert all(out[f"{m}_ci"] is None for m in ("pearson", "spearman", "kendall"))
    assert "n = 3" in out["warning"] and "too few points" in out["warning"]
    assert out["p_exact"] and out["pearson_p"] == pytest.approx(2 / 6)  # identity and one other order of 3! reach |r|


def test_values_match_scipy():
    from scipy import stats as sps

    x = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.6]
    y = [2.0, 7.0, 1.0, 8.0, 2.8, 1.8, 2.9]
    # exact permutation p of Kendall's tau (no ties) is scipy's exact null distribution's
    assert correlation("kendall", x, y).p == pytest.approx(sps.kendalltau(x, y, method="exact").pvalue)
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(size=30)
    c = correlation("pearson", a, b, bootstrap=2000)
    assert c.value == pytest.approx(sps.pearsonr(a, b).statistic)
    ref = sps.pearsonr(a, b).confidence_interval(method=sps.BootstrapMethod(method="BCa", n_resamples=2000,
                                                                              rng=np.random.default_rng(1)))
    assert c.ci == pytest.approx([ref.low, ref.high], abs=0.03)  # another draw of the same BCa bootstrap


def test_bootstrap_is_reproducible_with_a_seed():
    a = correlation("kendall", X, Y, bootstrap=300, permutations=500, seed=7)
    b = correlation("kendall", X, Y, bootstrap=300, permutations=500, seed=7)
    c = correlation("kendall", X, Y, bootstrap=300, permutations=500, seed=8)
    assert (a.ci, a.p) == (b.ci, b.p)
    assert a.ci != c.ci


def test_table_shape_and_rows_with_missing_values_are_dropped_per_column():
    df = pd.DataFrame({"variant": list("abcdefgh"), "l": X, "f": Y[:7] + [np.nan], "y": Y})
    out = correlate_table(df, ["l", "f"], "y", "variant", bootstrap=200, permutations=500)
    assert set(out) == {"l", "f"}
    assert out["l"]["n"] == 8 and out["f"]["n"] == 7 and out["f"]["labels"] == list("abcdefg")
    for key in ("pearson", "pearson_ci", "pearson_p", "spearman", "spearman_ci", "spearman_p", "kendall",
                "kendall_ci", "kendall_p", "n"):
        assert key in out["l"]
    assert out["f"]["pearson"] == pytest.approx(np.corrcoef(Y[:7], Y[:7])[0, 1])


@pytest.mark.parametrize(
    "frame,x,y,message",
    [
        (pd.DataFrame({"a": [1, 2, 3], "y": [1, 2, 3]}), ["nope"], "y", "column 'nope' not in the table"),
        (pd.DataFrame({"a": [1, "x", 3], "y": [1, 2, 3]}), ["a"], "y", "column 'a' is not numeric: row 2 holds 'x'"),
        (pd.DataFrame({"a": [1, 2], "y": [1, 2]}), ["a"], "y", "2 rows with both values"),
        (pd.DataFrame({"a": [1, 1, 1], "y": [1, 2, 3]}), ["a"], "y", "column 'a' is constant"),
        (pd.DataFrame({"a": [1, 2, 3], "y": [5, 5, 5]}), ["a"], "y", "column 'y' is constant"),
    ],
)
def test_bad_tables_raise_a_clear_error(frame, x, y, message):
    with pytest.raises(TableError, match=message):
        correlate_table(frame, x, y, bootstrap=10, permutations=10)


def test_undefined_correlations_can_be_reported_instead_of_failing():
    import pandas as pd

    from analysis.stats import TableError, correlate_table

    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "flat": [0.5, 0.5, 0.5], "y": [0.1, 0.3, 0.2]})
    with pytest.raises(TableError, match="constant"):
        correlate_table(df, ["a", "flat"], "y", bootstrap=10, permutations=10)
    out = correlate_table(df, ["a", "flat"], "y", bootstrap=10, permutations=10, skip_undefined=True)
    assert "pearson" in out["a"] and "constant" in out["flat"]["undefined"]


def test_mean_interval_is_the_student_t_interval():
    from scipy import stats as sps

    from analysis.stats import mean_interval

    v = [0.2, 0.5, 0.35, 0.4]
    half = sps.t.ppf(0.95, 3) * np.std(v, ddof=1) / np.sqrt(4)
    got = mean_interval(v + [float("nan")], alpha=0.1)
    assert got["n"] == 4 and got["mean"] == pytest.approx(np.mean(v))
    assert got["ci"] == pytest.approx([np.mean(v) - half, np.mean(v) + half])
    assert mean_interval([0.3])["ci"] is None and mean_interval([])["mean"] is None


def test_paired_tests_against_scipy_and_in_the_expected_direction():
    from analysis.stats import paired_tests

    d = [-0.3, -0.2, -0.4, 0.05, -0.25]
    out = paired_tests(d, sign=-1)  # expected lower: negative differences agree
    assert out["t_test"]["p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue) and out["t_test"]["df"] == 4
    assert out["sign_test"] == {"agree": 4, "n": 5, "p": pytest.approx(6 / 32)}
    assert paired_tests(d, sign=1)["sign_test"]["agree"] == 1  # the other direction
    ties = paired_tests([0.1, 0.0, 0.2, 0.0], sign=1)["sign_test"]
    assert ties == {"agree": 2, "n": 2, "p": pytest.approx(0.25)}  # ties left out


def test_paired_tests_edge_cases_give_no_false_certainty():
    from analysis.stats import paired_tests

    assert paired_tests([0.2], 1)["t_test"]["p"] is None  # one seed: no spread, no test
    assert paired_tests([], 1) == {"t_test": {"t": None, "df": 0, "p": None}, "sign_test": {"agree": 0, "n": 0, "p": None}}
    assert paired_tests([0.0, 0.0, 0.0], 1)["t_test"]["p"] == 1.0 and paired_tests([0.0, 0.0], 1)["sign_test"]["p"] is None
    same = paired_tests([0.05, 0.05], 1)  # identical differences: the t-test is certain, the sign test is not
    assert same["t_test"]["p"] == 0.0 and same["sign_test"]["p"] == pytest.approx(0.25)
    nan = paired_tests([0.1, float("nan"), 0.2], 1)  # a NaN seed is left out, not read as zero spread
    assert nan["t_test"]["df"] == 1 and nan["t_test"]["p"] == pytest.approx(stats.ttest_1samp([0.1, 0.2], 0).pvalue)
