"""Training dynamics (genrm.dynamics): what the monitor measures, that it reuses the reward's
own verdicts, counts its failures, never changes a reward, and picks rollouts by hash; the
MetaRM / MetaJudge on a real loopback server (the rule judge of genrm/testing.py)."""

from __future__ import annotations

import copy
import random

import pytest
from omegaconf import OmegaConf

from genrm.dynamics import LOGGED, PREFIX, Dynamics, DynamicsSettings, MeasuredReward, chosen
from genrm.records import PairwiseSample, sample_to_json
from genrm.rewards import RewardConfig
from genrm.rewards.base import Judge, Rollout
from genrm.testing import rule_responder
from genrm.training import TRLReward
from plumbing.config.hydra_app import conf_dir
from plumbing.engines import derive_ratios
from plumbing.launch.server import free_port
from plumbing.llm.openai_http import OpenAIHTTPBackend
from plumbing.llm.types import LLMBackend, SamplingParams
from plumbing.testing.loopback import LoopbackServer

SAMPLE = PairwiseSample("s1", [{"role": "user", "content": "2+2?"}], "4", "5", "A", "A is right #fact",
                        ["A computes #fact", "B is wrong #math"])
ROLLOUTS = [Rollout("A is right because of #fact \\boxed{A}", SAMPLE),  # right, for the right reason
            Rollout("A looks more polite #style \\boxed{A}", SAMPLE),  # right, for a wrong reason
            Rollout("B is right #fact \\boxed{B}", SAMPLE),  # wrong verdict: never judged
            Rollout("I cannot decide", SAMPLE)]  # unparsable


def _judge(url: str) -> Judge:
    return Judge(OpenAIHTTPBackend(url, "judge", timeout_s=5, max_retries=0, backoff_initial_s=0.01),
                 SamplingParams(max_tokens=64))


def _reward(name: str, url=None):
    judges = {"metarm": _judge(url), "metajudge": _judge(url)} if url else {}
    shipped = OmegaConf.to_container(OmegaConf.load(conf_dir() / "reward" / f"{name}.yaml"))
    return RewardConfig(**{**shipped, "params": {}}).build(judges)


def _col(rows, key):
    return [r[PREFIX + key] for r in rows]


def test_an_outcome_run_with_a_monitor_measures_the_rationale_and_keeps_its_rewards():
    reward = _reward("outcome")
    plain = reward.score(ROLLOUTS)
    with LoopbackServer(responder=rule_responder) as srv:
        dyn = Dynamics(reward, DynamicsSettings(), _judge(srv.base_url))
        results = reward.score(ROLLOUTS)
        before = copy.deepcopy(results)
        rows = dyn.measure(ROLLOUTS, results, step=0)
        calls = srv.chat_requests
    assert results == before == plain  # measured after scoring, nothing changed
    assert calls == 6  # the two label-correct rollouts only: a MetaRM prompt, a decomposition, a match each
    assert _col(rows, "outcome_reward") == [1, 1, 0, 0]
    assert _col(rows, "rationale_correct_num") == [1, 0, 0, 0] and _col(rows, "rationale_correct_den") == [1, 1, 0, 0]
    assert dyn.sources == {"rationale_correct": "monitor", "checklist_ap": "monitor"}
    # the sample carries a checklist: the monitor as MetaJudge gives AP of the label-correct ones
    assert _col(rows, "checklist_ap_den") == [1, 1, 0, 0] and _col(rows, "checklist_ap_num")[0] > 0
    assert dyn.summary()["monitor_judged"] == 4 and dyn.summary()["monitor_failed"] == 0
    assert set(rows[0]) == set(LOGGED)


def test_ralign_reuses_its_metarm_verdicts_and_hybrid_its_ap_the_monitor_is_not_asked_again():
    with LoopbackServer(responder=rule_responder) as reward_srv, LoopbackServer(responder=rule_responder) as mon:
        ralign = _reward("ralign", reward_srv.base_url)
        res = ralign.score(ROLLOUTS)
        dyn = Dynamics(ralign, DynamicsSettings(), _judge(mon.base_url))
        rows = dyn.measure(ROLLOUTS, res, step=0)
        assert dyn.sources["rationale_correct"] == "reward"
        assert _col(rows, "rationale_correct_num") == [1, 0, 0, 0] and _col(rows, "rationale_correct_den") == [1, 1, 0, 0]
        ralign_monitor_calls = mon.chat_requests  # only AP (ralign does not measure it): MetaJudge prompts
        hybrid = _reward("hybrid", reward_srv.base_url)
        res = hybrid.score(ROLLOUTS)
        before = mon.chat_requests
        hdyn = Dynamics(hybrid, DynamicsSettings(), _judge(mon.base_url))
        hrows = hdyn.measure(ROLLOUTS, res, step=0)
        hybrid_monitor_calls = mon.chat_requests - before
    assert ralign_monitor_calls == 4  # decompose + match for each of 2 rollouts, no MetaRM prompt
    assert hdyn.sources == {"rationale_correct": "monitor", "checklist_ap": "reward"}
    assert _col(hrows, "checklist_ap_num") == [res[0].diagnostics["ap"], res[1].diagnostics["ap"], 0, 0]
    assert _col(hrows, "checklist_ap_den") == [1, 1, 0, 0]
    assert hybrid_monitor_calls == 2  # MetaRM prompts only; its AP came from the reward


def test_monitor_failures_are_counted_never_raised_and_never_change_rewards():
    class Broken(LLMBackend):
        model_id = "broken"

        def _complete(self, requests, on_result, progress):
            raise RuntimeError("the monitor's server fell over")

    reward = _reward("outcome")
    for judge in (_judge(f"http://127.0.0.1:{free_port()}/v1"), Judge(Broken(), SamplingParams())):
        dyn = Dynamics(reward, DynamicsSettings(), judge)
        results = reward.score(ROLLOUTS)
        rows = dyn.measure(ROLLOUTS, results, step=0)
        assert [r.reward for r in results] == [1.0, 1.0, 0.0, 0.0]
        assert _col(rows, "monitor_fail") == [1, 1, 0, 0] and _col(rows, "rationale_correct_den") == [0, 0, 0, 0]
        assert dyn.summary()["monitor_failed"] == 4 == dyn.summary()["monitor_judged"]  # MetaRM + AP, 2 each


def test_sampling_is_by_hash_the_same_in_any_order_and_leaves_every_rng_alone():
    import torch

    rollouts = [Rollout(f"reason {k} #fact \\boxed{{A}}", SAMPLE) for k in range(200)]
    state, torch_state = random.getstate(), torch.get_rng_state()
    picked = {r.completion for r in rollouts if chosen(7, 0.25, r)}
    again = {r.completion for r in reversed(rollouts) if chosen(7, 0.25, r)}
    assert random.getstate() == state and torch.equal(torch.get_rng_state(), torch_state)
    assert picked == again and 25 <= len(picked) <= 75  # about a quarter
    assert picked != {r.completion for r in rollouts if chosen(8, 0.25, r)}  # its own seed
    with LoopbackServer(responder=rule_responder) as srv:
        dyn = Dynamics(_reward("outcome"), DynamicsSettings(fraction=0.25, seed=7), _judge(srv.base_url))
        rows = dyn.measure(rollouts, _reward("outcome").score(rollouts), step=0)
    judged = {r.completion for r, row in zip(rollouts, rows) if row[PREFIX + "rationale_correct_den"]}
    assert judged == picked and dyn.summary()["monitor_judged"] == 2 * len(picked)  # MetaRM and AP each


def test_every_nth_step_only_and_the_outcome_reward_on_every_step():
    with LoopbackServer(responder=rule_responder) as srv:
        dyn = Dynamics(_reward("outcome"), DynamicsSettings(every=3), _judge(srv.base_url))
        res = _reward("outcome").score(ROLLOUTS)
        steps = {s: dyn.measure(ROLLOUTS, res, step=s) for s in range(4)}
    assert [sum(_col(steps[s], "rationale_correct_den")) for s in range(4)] == [2, 0, 0, 2]
    assert all(_col(steps[s], "outcome_reward") == [1, 1, 0, 0] for s in range(4))


def test_ratios_are_derived_from_num_and_den_and_trl_logs_the_same_names():
    assert derive_ratios({"x_num": 0.25, "x_den": 0.5, "y_num": 0.0, "y_den": 0.0}) == \
        {"x_num": 0.25, "x_den": 0.5, "y_num": 0.0, "y_den": 0.0, "x": 0.5}  # y: nothing measured
    logged = {}
    with LoopbackServer(responder=rule_responder) as srv:
        reward = _reward("outcome")
        fn = TRLReward(reward, Dynamics(reward, DynamicsSettings(), _judge(srv.base_url)))
        columns = {"sample": [sample_to_json(r.sample) for r in ROLLOUTS]}
        rewards = fn([None] * 4, [r.completion for r in ROLLOUTS], log_metric=logged.__setitem__, **columns)
        measured = MeasuredReward(reward, Dynamics(reward, DynamicsSettings(), _judge(srv.base_url))).score(ROLLOUTS)
    assert rewards == TRLReward(reward)([None] * 4, [r.completion for r in ROLLOUTS], **columns) == [1, 1, 0, 0]
    assert logged[PREFIX + "outcome_reward"] == 0.5 and derive_ratios(logged)[PREFIX + "rationale_correct"] == 0.5
    assert set(LOGGED) <= set(logged)
    assert all(set(LOGGED) <= set(r.diagnostics) for r in measured)  # OpenRLHF's extra_logs: the same names
    assert [r.reward for r in measured] == [1, 1, 0, 0]


def test_config_settings_are_checked():
    from plumbing.config.validate import check_tree

    problems = dict(check_tree(DynamicsSettings(every=0, fraction=1.5, require=["vibes"])))
    assert set(problems) >= {"every", "fraction", "require"}


def test_a_required_signal_without_a_judge_is_refused_naming_the_key_exit_2(cli, python, tmp_path):
    r = cli([python, "-m", "genrm.train", "experiment=smoke_genrm", "reward=outcome",
             "dynamics.require=[rationale_correct]", f"output_dir={tmp_path}"])
    assert r.returncode == 2, r.stderr[-2000:]
    assert "monitor:" in r.stderr and "llm@monitor=" in r.stderr and "Traceback" not in r.stderr
    ok = cli([python, "-m", "genrm.train", "experiment=smoke_genrm", "reward=ralign", "dry_run=true",
              "dynamics.require=[rationale_correct]", f"output_dir={tmp_path / 'ralign'}"])
    assert ok.returncode == 0, ok.stderr[-2000:]  # ralign measures it itself


def test_openrlhf_refuses_every_and_checks_the_monitor_like_a_judge(tmp_path):
    from plumbing.config.hydra_app import compose, finalize
    from plumbing.config.validate import ConfigError

    import genrm_fixtures as fx

    data = fx.write(tmp_path / "d.jsonl", fx.ralign_records())
    base = ["experiment=genrm_rlvr_qwen3_8b", "dry_run=true", f"output_dir={tmp_path / 'o'}",
            f"data.ralign_rl.path={data}"]
    with pytest.raises(ConfigError) as err:
        finalize(*compose("genrm_train", base + ["dynamics.every=5", "llm@monitor=transformers",
                                                    "monitor.model=Qwen/Qwen3-32B"]))
    assert "dynamics.every" in str(err.value) and "monitor._target_" in str(err.value)
