"""Arena-Hard-v2's protocol, piece by piece, against hand-worked values: the judge's five-level
verdicts read as arena-hard reads them (malformed ones refused), battles from the two games with
strong verdicts weighted 3, the Bradley-Terry fit against sklearn and closed forms, style
features and style control, the bootstrap interval's properties, and bad params named."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from downstream_eval.tasks.arena_hard import (battles, bt_win_rate, fit_logistic, parse_verdict, scaled,
                                              style_counts, style_features)
from downstream_eval.tasks.judge_protocol import percentile_interval
from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError


@pytest.mark.parametrize("text, verdict", [
    ("Both are fine.\n\nMy final verdict is: [[A>>B]]", "A>>B"),
    ("Final verdict: [[a>b]]", "A>B"),  # read upper-cased
    ("Tie: [[A=B]]", "A=B"),
    ("[[B=A]]", "A=B"),  # the mirrored spellings are the same verdicts
    ("B is better [[B>A]]", "B>A"),
    ("[[A<B]]", "B>A"),
    ("[[B<<A]]", "A>>B"),
    ("[[A<<B]]", "B>>A"),
    ("I first thought [[A>B]] but on reflection [[B>>A]]", "B>>A"),  # the last label counts
    ("Verdict: [A=B]", "A=B"),  # single brackets when there is no double one
    ("[[A>B]] (not [B>A])", "A>B"),  # a double-bracket label wins over a later single one
    ("<think>maybe [[A>>B]]</think>I cannot decide.", None),  # a label only in the thinking
    ("My verdict: A is better.", None),  # no label
    ("[[A>>>B]]", None),  # malformed labels
    ("[[AB]]", None),
    ("[[A>B>A]]", None),
    ("", None),
])
def test_five_level_verdicts_are_read_as_arena_hard_reads_them(text, verdict):
    assert parse_verdict(text) == verdict


def test_battles_of_two_games_by_hand():
    # game 1 shows the baseline as A, game 2 the policy as A
    assert battles("A>>B", "A>B") == [0.0, 0.0, 0.0, 1.0]  # baseline much better, then policy slightly better
    assert battles("B>>A", "A>>B") == [1.0] * 6  # policy much better both times: 3 + 3 battles
    assert battles("A=B", "B>A") == [0.5, 0.0]
    assert battles("B>A", "B>>A", strong_weight=1) == [1.0, 0.0]


def _soft_sklearn(X, y):
    """sklearn's unpenalised logistic regression on outcomes with ties: a tie is a win and a
    loss of weight 1/2 each, the same likelihood as the soft label 0.5."""
    rows, labels, weights = [], [], []
    for x, t in zip(X, y):
        for label, w in ((1, t), (0, 1 - t)):
            if w:
                rows.append(x), labels.append(label), weights.append(w)
    m = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10000)
    return m.fit(np.array(rows), labels, sample_weight=weights).coef_[0]


def test_bradley_terry_fit_matches_sklearn_on_a_known_battle_table():
    # 12 battles: outcome, relative length, bold density difference
    table = np.array([[1, .4, .1], [1, .2, 0], [.5, 0, 0], [0, -.3, .2], [1, .1, -.1], [0, -.5, 0],
                      [.5, .3, .3], [1, -.1, .1], [0, .2, -.2], [1, .6, 0], [0, -.2, -.1], [.5, -.4, .2]])
    X = np.column_stack([np.ones(len(table)), table[:, 1:]])
    ours = fit_logistic(X, table[:, 0])
    assert ours == pytest.approx(_soft_sklearn(X, table[:, 0]), abs=1e-5)
    assert bt_win_rate(table[:, 0], table[:, 1:]) == pytest.approx(1 / (1 + np.exp(-ours[0])), abs=1e-9)


def test_bradley_terry_closed_forms():
    y = np.array([1, 1, 1, 0, .5, 1, 0, .5])
    # one policy against the baseline, no covariate: the win rate is the battles' mean
    assert bt_win_rate(y) == 0.625  # (1 + 1 + 1 + 0 + .5 + 1 + 0 + .5) / 8
    b = fit_logistic(np.ones((8, 1)), y)
    assert 1 / (1 + np.exp(-b[0])) == pytest.approx(0.625, abs=1e-9)
    # a 0/1 covariate saturates the model: read at 0, the win rate is the mean where it is 0
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1.0])
    assert bt_win_rate(y, x[:, None]) == pytest.approx(np.mean(y[:4]), abs=1e-6)  # 0.75
    assert bt_win_rate(y, (1 - x)[:, None]) == pytest.approx(np.mean(y[4:]), abs=1e-6)  # 0.5


def test_style_control_removes_a_pure_length_advantage():
    """The policy wins exactly the battles where it wrote more; at equal length it ties. Its
    raw win rate is high, its win rate at equal style 1/2."""
    length = np.array([.5] * 30 + [0] * 20)
    y = np.array([1.0] * 30 + [0.5] * 20)
    assert bt_win_rate(y) == pytest.approx(0.8)
    assert bt_win_rate(y, scaled(length[:, None])) == pytest.approx(0.5, abs=1e-6)


def test_style_counts_and_features_by_hand():
    text = ("# Plan\n\n- first **step**\n- second\n1. third __x__\n"
            "```\n# not a header\n- not a list\n**nor bold**\n```\nDone.")
    c = style_counts(text)
    assert (c["header"], c["list"], c["bold"]) == (1, 3, 2)  # code blocks do not count
    assert style_counts("Hello, world!") == {"tokens": 4, "header": 0, "list": 0, "bold": 0}
    policy = {"tokens": 30, "header": 3, "list": 0, "bold": 1}
    base = {"tokens": 10, "header": 0, "list": 0, "bold": 1}
    f = style_features(policy, base, ["length", "markdown"])
    dh = 3 / 31
    db_p, db_b = 1 / 31, 1 / 11
    assert f == pytest.approx([20 / 40, dh / (dh + 0 + 1), 0.0, (db_p - db_b) / (db_p + db_b + 1)])
    assert style_features(policy, base, ["length"]) == [0.5]
    assert scaled(np.array([[1.0, 2.0], [3.0, 2.0]])).tolist() == [[1.0], [3.0]]  # sd 1; a constant is left out


def test_bootstrap_interval_properties():
    y = np.array([1.0] * 60 + [0.0] * 40)
    stat = lambda i: float(y[i].mean())  # noqa: E731
    ci = percentile_interval(stat, len(y), 1000, 0.90, seed=3)
    assert ci[0] < 0.6 < ci[1]
    assert ci == percentile_interval(stat, len(y), 1000, 0.90, seed=3)  # the same seed, the same interval
    # close to the normal approximation of a proportion's 90% interval
    half = 1.645 * np.sqrt(0.6 * 0.4 / 100)
    assert ci == pytest.approx([0.6 - half, 0.6 + half], abs=0.02)
    wider = percentile_interval(stat, len(y), 1000, 0.99, seed=3)
    assert wider[0] <= ci[0] and wider[1] >= ci[1]
    big = np.tile(y, 16)
    narrow = percentile_interval(lambda i: float(big[i].mean()), len(big), 1000, 0.90, seed=3)
    assert narrow[1] - narrow[0] < (ci[1] - ci[0]) / 2  # 16 times the data: a quarter of the width
    ones = np.ones(20)
    assert percentile_interval(lambda i: float(ones[i].mean()), 20, 100, 0.9, 0) == [1.0, 1.0]
    assert percentile_interval(stat, 0, 100, 0.9, 0) is None and percentile_interval(stat, 5, 0, 0.9, 0) is None


def test_bad_params_are_named():
    with pytest.raises(ConfigError) as err:
        compose("downstream_eval", ["~suite", "task=[arena_hard_v2]", "output_dir=/tmp/x",
                                    "llm@judge=openai", "judge.model=j", "judge.base_url=http://127.0.0.1:9/v1",
                                    "tasks.arena_hard_v2.params.style_control=[colour]",
                                    "tasks.arena_hard_v2.params.interval=2"])
    problems = dict(err.value.problems)
    assert "unknown feature(s) ['colour']" in problems["tasks.arena_hard_v2.params.style_control"]
    assert "tasks.arena_hard_v2.params.interval" in problems


def _no_verdict():
    from downstream_eval.tasks import Grade

    style = {"tokens": 3, "header": 0, "list": 0, "bold": 0}
    return Grade(0.5, None, "no_verdict", {"battles": [], "judge_status": ["parse_fail", "ok"],
                                           "style": [style, style], "category": "hard_prompt"})


@pytest.mark.parametrize("style", [[], ["length", "markdown"]])
def test_no_battle_at_all_gives_no_score_not_a_crash(style):
    """Every judgment without a verdict: no score, the failures counted (the battle table's
    reshape of zero rows raised before, ending the run)."""
    from downstream_eval.tasks import TaskConfig
    from downstream_eval.tasks.arena_hard import ArenaHardTask

    t = ArenaHardTask(TaskConfig(name="ah", domain="general", params={"style_control": style}))
    s = t.summarize([[_no_verdict()]])
    assert s["score"] is None and s["battles"] == 0 and s["judge_parse_fail"] == 1


def test_the_summary_s_prompt_version_follows_the_prompt(monkeypatch):
    """The summary names the prompt version of the cache key (<name>@<digest>); an edited
    judge prompt changes both (the summary said the bare name whatever the prompt was)."""
    from downstream_eval.tasks import TaskConfig
    from downstream_eval.tasks import arena_hard as ah

    t = ah.ArenaHardTask(TaskConfig(name="ah", domain="general"))
    before = t.summarize([[_no_verdict()]])["judge_prompt"]
    assert before == t.judge_prompt_version() and before.startswith(ah.PROMPT_VERSION + "@")
    monkeypatch.setattr(ah, "SYSTEM_COMPARE", ah.SYSTEM_COMPARE + " Edited.")
    assert t.summarize([[_no_verdict()]])["judge_prompt"] != before
