"""The pairwise GenRM reward for policies, against a rule judge on a real loopback server."""

from __future__ import annotations

import pytest

from genrm.testing import rule_responder
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import SamplingParams
from plumbing.testing.loopback import LoopbackServer
from plumbing.engines import batch_means
from policy_rlhf.reward import DIAGNOSTICS, PairwiseReward, PairwiseRewardConfig, PolicyRollout

CTX = [{"role": "user", "content": "Explain X."}]


@pytest.fixture
def judge():
    with LoopbackServer(responder=rule_responder) as srv:
        yield srv


def _reward(srv, **cfg):
    backend = OpenAIHTTPBackend(srv.base_url, "genrm", max_retries=0, timeout_s=5)
    return PairwiseReward(PairwiseRewardConfig(**cfg), backend, SamplingParams(max_tokens=32))


def _ref(response, reference="a plain reference", **kw):
    return PolicyRollout(CTX, response, reference, **kw)


def test_both_orders_cancel_position_bias_and_average(judge):
    r = _reward(judge)
    res = r.score([_ref("great answer <<good>>"),  # beats the reference in both orders
                   _ref("weak answer", "reference <<good>>"),  # loses in both orders
                   _ref("plain answer"),  # neither good: the judge picks position A both times -> split
                   _ref("also <<good>>", "reference <<good>>")])  # both good: position A again -> split
    assert [x.reward for x in res] == [1.0, 0.0, 0.5, 0.5]
    assert [x.diagnostics["swap_consistent"] for x in res] == [1.0, 1.0, 0.0, 0.0]
    assert judge.chat_requests == 8
    assert batch_means(res, DIAGNOSTICS)["win_rate"] == 0.5


def test_failures_and_unparsable_verdicts_get_the_neutral_value_and_are_counted(judge):
    r = _reward(judge, neutral=0.3)
    res = r.score([_ref("an answer that breaks the judge <<garbage>>"), _ref("server error [fault:500]")])
    assert [x.reward for x in res] == [0.3, 0.3]
    assert res[0].diagnostics["unparsable"] == 2 and res[0].diagnostics["judge_failures"] == 0
    assert res[1].diagnostics["judge_failures"] == 2


def test_thinking_is_removed_and_empty_or_truncated_responses_get_the_floor(judge):
    r = _reward(judge, floor=0.1)
    res = r.score([_ref("<think>I will write <<good>> here</think>plain final answer", "reference <<good>>"),
                   _ref("<think>only thinking, never finished"),
                   _ref("cut off <<good>>", truncated=True),
                   _ref("   ")])
    assert res[0].reward == 0.0  # the marker inside the thinking block is not seen by the judge
    assert [x.reward for x in res[1:]] == [0.1, 0.1, 0.1]
    assert [x.diagnostics["floor"] for x in res] == [0, 1, 1, 1]
    assert judge.chat_requests == 2  # only the first rollout was judged
    keep_truncated = _reward(judge, penalize_truncated=False).score([_ref("cut off <<good>>", truncated=True)])
    assert keep_truncated[0].reward == 1.0


def test_symmetric_scale_maps_to_minus_one_one(judge):
    res = _reward(judge, scale="symmetric").score([_ref("<<good>>"), _ref("x", "<<good>>"), _ref("x")])
    assert [x.reward for x in res] == [1.0, -1.0, 0.0]


def test_group_mode_round_robin_between_siblings(judge):
    group = [PolicyRollout(CTX, t, group="p1") for t in ("best <<good>>", "plain one", "plain two")]
    other = [PolicyRollout(CTX, t, group="p2") for t in ("alone <<good>>",)]
    res = _reward(judge, mode="group").score(group + other)
    # best beats both (1, 1); the plain ones lose to best (0) and split between themselves (0.5)
    assert [x.reward for x in res] == [1.0, 0.25, 0.25, 0.5]
    assert [x.diagnostics["comparisons"] for x in res] == [2, 2, 2, 0]
    assert judge.chat_requests == 3 * 2  # 3 pairs, both orders; the lone sample has no sibling
    limited = _reward(judge, mode="group", group_opponents=1).score(
        [PolicyRollout(CTX, f"s{k}", group="g") for k in range(4)])
    assert [x.diagnostics["comparisons"] for x in limited] == [2, 2, 2, 2]  # a ring: 4 pairs


def test_reference_mode_needs_references(judge):
    with pytest.raises(ValueError, match="reference response"):
        _reward(judge).score([PolicyRollout(CTX, "answer", None)])


def test_real_tiny_genrm_through_transformers_serve(tiny_model, tmp_path):
    from plumbing.launch.server import LocalServer

    with LocalServer("transformers", str(tiny_model), log_path=tmp_path / "s.log") as srv:
        backend = OpenAIHTTPBackend(srv.base_url, srv.served_model, concurrency=4)
        reward = PairwiseReward(PairwiseRewardConfig(neutral=0.5), backend, SamplingParams(max_tokens=8))
        res = reward.score([_ref("an answer"), _ref("<think>t</think>another"), _ref("")])
        backend.close()
    for x in res[:2]:
        d = x.diagnostics
        assert 0.0 <= x.reward <= 1.0 and d["comparisons"] == 1
        assert d["judge_failures"] == 0 and d["unparsable"] <= 2  # a random model rarely writes a verdict
    assert res[2].diagnostics["floor"] == 1
