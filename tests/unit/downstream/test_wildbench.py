"""WildBench's protocol against hand-worked values: the judge's JSON score and choice read
(malformed ones refused), WB-Score's (s-5)*2 rescaling and its weighted task macro, WB-Reward's
+100/+50/0/-50/-100 with the length margin K, and bad params named."""

from __future__ import annotations

import pytest

from downstream_eval.tasks import Grade, TaskConfig
from downstream_eval.tasks.wildbench import (GROUP_WEIGHTS, parse_choice, parse_score, policy_reward, rescale,
                                             shorten)
from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError


@pytest.mark.parametrize("text, score", [
    ('{"strengths": "clear", "weaknesses": "none", "score": "8"}', 8.0),
    ('Analysis...\n```json\n{\n  "strengths": "a",\n  "weaknesses": "b",\n  "score": "7"\n}\n```', 7.0),
    ('{"strengths": "x", "score": 6.5}', 6.5),  # a number, not a string
    ('Broken JSON {"strengths": "it said "great"", "score": "9"', 9.0),  # read by key when JSON fails
    ('{"score": "11"}', None),  # out of 1..10
    ('{"score": "0"}', None),
    ('{"score": "[1~10]"}', None),  # the template's placeholder
    ("I would give it an 8.", None),  # no score key
    ("<think>\"score\": \"3\"</think>no JSON", None),
])
def test_wb_score_judgments(text, score):
    assert parse_score(text) == score


@pytest.mark.parametrize("text, choice", [
    ('{"analysis of A": "..", "choice": "A++"}', "A++"),
    ('```\n{"choice": "B+"}\n```', "B+"),
    ('{"choice": "a=b"}', "A=B"),
    ('{"choice": "A +"}', "A+"),
    ('{"choice": "A>B"}', None),  # not one of WildBench's five
    ('{"choice": "[A++ or A+ or A=B or B+ or B++]"}', None),
    ("A is much better.", None),
])
def test_wb_reward_judgments(text, choice):
    assert parse_choice(text) == choice


def test_rescaling_and_rewards_by_hand():
    assert [rescale(s) for s in (1, 5, 7.5, 10)] == [-8.0, 0.0, 5.0, 10.0]
    # the policy shown as A / as B
    assert policy_reward("A++", True, 10, 10, None) == 1.0 and policy_reward("A++", False, 10, 10, None) == -1.0
    assert policy_reward("B+", False, 10, 10, None) == 0.5 and policy_reward("A=B", True, 10, 10, None) == 0.0
    # K = 100: a slight win by an answer more than 100 characters longer is a tie; a big win stays
    assert policy_reward("A+", True, 250, 100, 100) == 0.0  # 250 > 100 + 100
    assert policy_reward("A+", True, 200, 100, 100) == 0.5  # 200 is not > 200
    assert policy_reward("A++", True, 900, 100, 100) == 1.0
    assert policy_reward("A+", False, 100, 400, 100) == 0.0  # the reference's slight win, it being longer
    assert policy_reward("A+", False, 400, 100, 100) == -0.5  # the shorter reference's slight win stands
    assert shorten("a b c d", 2) == "a b... (truncated)" and shorten("a b", 2) == "a b"


def _task(mode, **params):
    cfg = TaskConfig(_target_="downstream_eval.tasks.wildbench.WildBenchTask", domain="general",
                     params={"mode": mode, **params}, name="wb")
    return cfg.build({})


def _g(detail_key, value, groups):
    return [Grade(0.0, None, "", {detail_key: value, "groups": groups, "judge_status": ["ok"]})]


def test_wb_score_macro_by_hand():
    """Scores 8 (Coding), 6 (Coding and Math), 3 (Creative): group means of the rescaled
    scores Coding (6+2)/2 = 4, Math 2, Creative -4; weighted (4*1.25 + 2*1 - 4*0.5) / 2.75 =
    1.8181..; x10 is the leaderboard's WB-Score 18.18; micro (17/3 - 5) * 2 * 10 = 13.33."""
    t = _task("score")
    grades = [_g("wb_raw", 8.0, ["coding_debugging"]), _g("wb_raw", 6.0, ["coding_debugging", "math_data_analysis"]),
              _g("wb_raw", 3.0, ["creative"])]
    s = t.summarize(grades)
    macro = (4 * 1.25 + 2 * 1 - 4 * 0.5) / (1.25 + 1 + 0.5)
    assert s["wb_score"] == pytest.approx(macro * 10)
    assert s["score"] == pytest.approx(macro / 10)
    assert s["wb_score_micro"] == pytest.approx((17 / 3 - 5) * 2 * 10)
    assert s["by_category"] == pytest.approx({"coding_debugging": 40.0, "creative": -40.0, "math_data_analysis": 20.0})
    assert s["score_ci"][0] <= s["score"] <= s["score_ci"][1]
    assert sum(GROUP_WEIGHTS.values()) == 4.75


def test_wb_reward_by_hand():
    t = _task("reward")
    grades = [_g("wb_reward", 1.0, ["creative"]), _g("wb_reward", 0.5, ["creative"]),
              _g("wb_reward", -1.0, ["planning_reasoning"]), _g("wb_reward", 0.0, ["planning_reasoning"])]
    s = t.summarize(grades)
    assert s["wb_reward"] == pytest.approx(12.5)  # (100 + 50 - 100 + 0) / 4
    assert s["score"] == pytest.approx(0.125)
    assert s["wb_reward_macro"] == pytest.approx((75 * 0.5 - 50 * 1.25) / 1.75)
    assert s["outcomes"] == {"win_much": 1, "win": 1, "tie": 1, "lose": 0, "lose_much": 1}


def test_bad_params_are_named():
    with pytest.raises(ConfigError) as err:
        compose("downstream_eval", ["~suite", "task=[wildbench]", "output_dir=/tmp/x", "llm@judge=openai",
                                    "judge.model=j", "judge.base_url=http://127.0.0.1:9/v1",
                                    "tasks.wildbench.params.mode=elo", "tasks.wildbench.params.max_words=0",
                                    "tasks.wildbench.params.length_penalty=-5"])
    problems = dict(err.value.problems)
    assert "must be one of ['score', 'reward']" in problems["tasks.wildbench.params.mode"]
    assert "tasks.wildbench.params.max_words" in problems
    assert "tasks.wildbench.params.length_penalty" in problems
