"""GenRM-training rewards on crafted rollouts, with the MetaRM / MetaJudge on a real loopback
server (the rule judge of genrm/testing.py; faults by marker)."""

from __future__ import annotations

import pytest

from genrm.records import PairwiseSample
from omegaconf import OmegaConf

from genrm.rewards import RewardConfig
from genrm.rewards.base import DIAGNOSTICS, Judge, Rollout
from plumbing.engines import batch_means
from genrm.testing import rule_responder
from plumbing.config.hydra_app import conf_dir
from plumbing.launch.server import free_port
from plumbing.llm.cache import CachedBackend, LLMCache
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import SamplingParams
from plumbing.testing.loopback import LoopbackServer

SAMPLE = PairwiseSample("s1", [{"role": "user", "content": "2+2?"}], "4", "5", "A", "A is right #fact",
                        ["A computes #fact", "B is wrong #math"])


def _rollout(text: str, sample: PairwiseSample = SAMPLE) -> Rollout:
    return Rollout(text, sample)


def _reward(name, url=None, tmp_path=None, timeout=5.0, **cfg):
    judges = {}
    if url:
        backend = OpenAIHTTPBackend(url, "judge", timeout_s=timeout, max_retries=1, backoff_initial_s=0.01)
        if tmp_path is not None:
            backend = CachedBackend(backend, LLMCache(tmp_path / "c.sqlite"))
        judges = {"metarm": Judge(backend, SamplingParams(max_tokens=64)),
                  "metajudge": Judge(backend, SamplingParams(max_tokens=64))}
    shipped = OmegaConf.to_container(OmegaConf.load(conf_dir() / "reward" / f"{name}.yaml"))
    return RewardConfig(**{**shipped, "params": cfg}).build(judges)


def test_outcome_reward_right_wrong_unparsable():
    r = _reward("outcome", format_fail_reward=-0.5)
    res = r.score([_rollout("A is better \\boxed{A}"), _rollout("\\boxed{B}"), _rollout("no verdict here")])
    assert [x.reward for x in res] == [1.0, 0.0, -0.5]
    assert [x.pred for x in res] == ["A", "B", None]
    assert [x.diagnostics["format_fail"] for x in res] == [0, 0, 1]


def test_ralign_reward_gates_on_the_label_and_follows_the_metarm():
    with LoopbackServer(responder=rule_responder) as srv:
        r = _reward("ralign", srv.base_url, format_fail_reward=-1.0)
        rollouts = [
            _rollout("A is right because of #fact \\boxed{A}"),  # right verdict, right reason
            _rollout("A looks more polite #style \\boxed{A}"),  # right verdict, wrong reason
            _rollout("B is right #fact \\boxed{B}"),  # wrong verdict: never sent to the MetaRM
            _rollout("I cannot decide"),  # unparsable
        ]
        res = r.score(rollouts)
        metarm_prompts = srv.chat_requests
    assert [x.reward for x in res] == [1.0, 0.0, 0.0, -1.0]
    assert metarm_prompts == 2  # only the two label-correct rollouts
    assert res[0].diagnostics["metarm_correct"] == 1 and res[1].diagnostics["metarm_incorrect"] == 1
    assert res[2].diagnostics["metarm_called"] == 0 and res[3].diagnostics["format_fail"] == 1
    means = batch_means(res, DIAGNOSTICS)
    assert means["label_correct"] == 0.5 and means["metarm_called"] == 0.5 and means["reward"] == 0.0


def test_ralign_reward_metarm_garbage_timeout_and_down_give_the_failure_reward():
    garbage = PairwiseSample("g", SAMPLE.context, "4", "5", "A", "<<garbage>> #fact")
    with LoopbackServer(responder=rule_responder) as srv:
        r = _reward("ralign", srv.base_url, timeout=0.5, metarm_failure_reward=0.25)
        res = r.score([_rollout("#fact \\boxed{A}", garbage), _rollout("#fact [fault:hang] \\boxed{A}")])
    assert [x.reward for x in res] == [0.25, 0.25]
    assert res[0].diagnostics["metarm_parse_fail"] == 1 and res[1].diagnostics["metarm_call_fail"] == 1
    down = _reward("ralign", f"http://127.0.0.1:{free_port()}/v1", metarm_failure_reward=0.25)
    res = down.score([_rollout("#fact \\boxed{A}"), _rollout("\\boxed{B}")])  # connection refused: no raise
    assert [x.reward for x in res] == [0.25, 0.0] and res[0].diagnostics["metarm_call_fail"] == 1


def test_identical_prompt_and_rationale_pairs_are_served_from_the_cache(tmp_path):
    with LoopbackServer(responder=rule_responder) as srv:
        r = _reward("ralign", srv.base_url, tmp_path)
        batch = [_rollout("A is right because of #fact \\boxed{A}")] * 8  # 8 samples of one prompt
        first = r.score(batch)
        again = r.score(batch)
        assert srv.chat_requests == 1
    assert [x.reward for x in first + again] == [1.0] * 16


def test_hybrid_reward_adds_lambda_times_ap_and_respects_the_wrong_verdict_setting():
    with LoopbackServer(responder=rule_responder) as srv:
        r = _reward("hybrid", srv.base_url, lambda_ap=0.5)
        # rationale tags #fact (matches R1) and #other: AP = (1/1)/2 = 0.5
        res = r.score([_rollout("because of #fact and #other \\boxed{A}"), _rollout("#fact #math \\boxed{B}"),
                       _rollout("no verdict #fact")])
        calls = srv.chat_requests
        on_wrong = _reward("hybrid", srv.base_url, lambda_ap=0.5, ap_on_wrong_verdict=True)
        wrong = on_wrong.score([_rollout("#fact #math \\boxed{B}")])
    assert res[0].reward == pytest.approx(1.0 + 0.5 * 0.5) and res[0].diagnostics["ap"] == pytest.approx(0.5)
    assert res[1].reward == 0.0 and res[1].diagnostics["metarm_called"] == 0  # wrong verdict: no AP
    assert res[2].diagnostics["format_fail"] == 1 and res[2].diagnostics["metarm_called"] == 0
    assert calls == 2  # one decomposition + one matching, for the single label-correct rollout
    assert wrong[0].reward == pytest.approx(0.5 * 1.0)  # R1 #fact -> S1, R2 #math -> S2: AP = 1


def test_a_reward_that_needs_a_judge_refuses_to_start_without_one():
    with pytest.raises(ValueError, match="needs a metarm backend"):
        RewardConfig(_target_="genrm.rewards.ralign.RAlignReward").build({})
