"""Metrics on hand-built samples; every expected value is worked out by hand here."""

import numpy as np
import pytest

from genrm.metrics import (CALL_FAIL, CORRECT, INCORRECT, PARSE_FAIL, UNJUDGED, WRONG, AtomicRules, atomic_metrics,
                           atomic_scores, category, label_counts, label_metrics, mean_ci, prepare_model_items)


def _label(cats, **kw):
    return label_metrics(label_counts(cats), **kw)


def test_label_metrics_with_failures():
    # 10 samples: 3 label-wrong; of 7 label-correct, MetaRM: 4 Correct, 2 Incorrect, 1 CallFail
    m = _label([WRONG] * 3 + [CORRECT] * 4 + [INCORRECT] * 2 + [CALL_FAIL], bootstrap=0)
    assert m["l_acc"] == pytest.approx(7 / 10)
    assert m["s_corr"] == pytest.approx(1 - 4 / 6)
    assert m["f_score"] == pytest.approx(4 / (10 - 1))
    assert (m["n"], m["label_correct"], m["correct"], m["incorrect"], m["call_fail"], m["parse_fail"]) == (10, 7, 4, 2, 1, 0)


def test_without_failures_f_equals_l_times_one_minus_s():
    m = _label([WRONG] * 2 + [CORRECT] * 5 + [INCORRECT] * 3, bootstrap=0)
    assert (m["l_acc"], m["s_corr"], m["f_score"]) == pytest.approx((0.8, 3 / 8, 0.5))
    assert m["f_score"] == pytest.approx(m["l_acc"] * (1 - m["s_corr"]))


def test_parse_fail_leaves_the_f_score_denominator():
    m = _label([CORRECT, CORRECT, INCORRECT, PARSE_FAIL, PARSE_FAIL, WRONG], bootstrap=0)
    assert m["l_acc"] == pytest.approx(5 / 6)
    assert m["s_corr"] == pytest.approx(1 / 3)
    assert m["f_score"] == pytest.approx(2 / 4)


def test_undefined_metrics_are_none_not_zero():
    all_wrong = _label([WRONG] * 4, bootstrap=0)
    assert all_wrong["l_acc"] == 0 and all_wrong["s_corr"] is None and all_wrong["f_score"] == 0
    no_metarm = _label([UNJUDGED] * 3 + [WRONG], bootstrap=0)
    assert no_metarm["l_acc"] == 0.75 and no_metarm["s_corr"] is None and no_metarm["f_score"] is None


def test_category_gates_on_label_and_rejects_contradictions():
    assert category(False, None) == WRONG and category(False, "SkippedLabelMismatch") == WRONG
    assert category(True, "Correct") == CORRECT and category(True, None) == UNJUDGED
    with pytest.raises(ValueError):
        category(True, "SkippedLabelMismatch")


def test_label_intervals_are_wilson_contain_the_point_and_narrow_with_n():
    from scipy.stats import binomtest

    cats = [WRONG] * 30 + [CORRECT] * 50 + [INCORRECT] * 20
    a = _label(cats)
    for k, (succ, n) in {"l_acc": (70, 100), "s_corr": (20, 70), "f_score": (50, 100)}.items():
        ci = binomtest(succ, n).proportion_ci(method="wilson")
        assert a[f"{k}_ci"] == pytest.approx([ci.low, ci.high])
        assert a[f"{k}_ci"][0] <= a[k] <= a[f"{k}_ci"][1]
    big = _label(cats * 100)
    assert big["l_acc_ci"][1] - big["l_acc_ci"][0] < (a["l_acc_ci"][1] - a["l_acc_ci"][0]) / 5
    assert _label(cats, bootstrap=0)["l_acc_ci"] is None  # intervals off


def test_a_proportion_at_zero_or_one_has_an_interval_of_some_width():
    """0 of 122 S-Corr: a percentile bootstrap said [0, 0]; Wilson gives [0, 0.031]."""
    m = _label([CORRECT] * 122)
    assert m["s_corr"] == 0.0 and m["s_corr_ci"][0] == 0.0 and m["s_corr_ci"][1] == pytest.approx(0.0305, abs=5e-4)
    assert m["l_acc"] == 1.0 and m["l_acc_ci"][0] == pytest.approx(1 - 0.0305, abs=5e-4)
    assert mean_ci(np.zeros(122))[1] == pytest.approx(0.0305, abs=5e-4)  # a pass rate of 0/122 too
    # a graded score in [0, 1] that is nearly constant is not more certain than 0/122
    nearly = mean_ci(np.array([0.0] * 121 + [0.25]))
    assert nearly[0] == 0.0 and nearly[1] >= mean_ci(np.zeros(122))[1]
    hi = mean_ci(np.array([1.0, 1.0, 0.9999999]))
    assert hi[0] < 0.5  # three scores say little, whatever their spread


def test_wilson_of_a_fractional_count_is_the_same_formula():
    from genrm.metrics import wilson_interval

    assert wilson_interval(3.0, 244) == pytest.approx(wilson_interval(3, 244))
    lo, hi = wilson_interval(30.5, 61)  # a mean of 0.5 over 61 graded scores
    assert lo + hi == pytest.approx(1.0)  # symmetric about 0.5, between its integer neighbours
    assert wilson_interval(30, 61)[0] < lo < wilson_interval(31, 61)[0]


def test_atomic_scores_by_hand():
    # n=3 reference items, m=4 model items; R1->S2 (1), R2->S4 (0.5), R3 unmatched
    s = atomic_scores([(1, 2, 1.0), (2, 4, 0.5), (3, 0, 0.0)], n=3, m=4)
    assert s["recall"] == pytest.approx(1.5 / 3)
    assert s["precision"] == pytest.approx(1.5 / 4)
    assert s["f1"] == pytest.approx(2 * 0.375 * 0.5 / 0.875)
    # matched S indices 2 < 4 take ranks 1, 2 (S1, S3 unmatched take no rank)
    assert s["ap"] == pytest.approx((1.0 / 1 + (1.0 + 0.5) / 2) / 3)


def test_atomic_unmatched_items_do_not_change_ap_ranks():
    early = atomic_scores([(1, 1, 1.0), (2, 2, 0.5)], n=2, m=2)
    late = atomic_scores([(1, 4, 1.0), (2, 5, 0.5)], n=2, m=5)  # S1..S3 unmatched in front
    assert early["ap"] == late["ap"] == pytest.approx((1.0 + 1.5 / 2) / 2)
    assert late["precision"] == pytest.approx(1.5 / 5) and early["precision"] == pytest.approx(1.5 / 2)


def test_atomic_two_reference_items_on_one_model_item_count_it_once_at_its_best():
    s = atomic_scores([(1, 1, 0.5), (2, 1, 1.0)], n=2, m=2)
    assert s["recall"] == pytest.approx(0.75)
    assert s["precision"] == pytest.approx(1.0 / 2)
    assert s["ap"] == pytest.approx((1.0 / 1) / 2)
    zero = atomic_scores([(1, 0, 0.0)], n=1, m=3)
    assert zero == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "ap": 0.0}


def test_reference_rules_cap_and_skips():
    rules = AtomicRules()
    items, reason = prepare_model_items([f"s{i}" for i in range(7)], rules)
    assert items == ["s0", "s1", "s2", "s3", "s4"] and reason is None
    assert prepare_model_items([f"s{i}" for i in range(11)], rules) == (None, "model_list_too_long")
    assert prepare_model_items([], rules) == (None, "empty_model_list")
    assert prepare_model_items([f"s{i}" for i in range(10)], rules)[0] is not None  # 10 is allowed
    loose = AtomicRules(max_model_items=8, skip_more_than=20, skip_empty=False)
    assert len(prepare_model_items([f"s{i}" for i in range(12)], loose)[0]) == 8
    assert prepare_model_items([], loose) == ([], None)


def test_atomic_dataset_means_and_counts():
    per = {"precision": [1.0, 0.5], "recall": [0.5, 0.5], "f1": [2 / 3, 0.5], "ap": [0.5, 0.25]}
    m = atomic_metrics(per, {"model_list_too_long": 1, "matcher_invalid": 2}, bootstrap=200)
    assert (m["valid"], m["skipped"]) == (2, 3)
    assert m["precision"] == 0.75 and m["ap"] == pytest.approx(0.375)
    lo, hi = m["recall_ci"]  # two samples that agree say little: Wilson at their mean, not [0.5, 0.5]
    assert lo < 0.5 < hi and hi - lo > 0.5
    assert atomic_metrics({}, {"empty_model_list": 4})["precision"] is None


def test_mean_ci_matches_naive_bootstrap():
    values = np.array([0.0, 0.25, 0.25, 0.5, 1.0, 1.0, 0.75, 0.0, 0.5, 1.0]) * 4  # not bounded in [0, 1]
    rng = np.random.default_rng(3)
    naive = [rng.choice(values, len(values)).mean() for _ in range(4000)]
    assert mean_ci(values, 4000, seed=5) == pytest.approx(list(np.quantile(naive, [0.025, 0.975])), abs=0.12)
    # scores in [0, 1]: the bootstrap's interval, widened to Wilson at the mean where that is wider
    lo, hi = mean_ci(values / 4, 4000, seed=5)
    boot = np.quantile([v / 4 for v in naive], [0.025, 0.975])
    assert lo <= boot[0] + 0.03 and hi >= boot[1] - 0.03
