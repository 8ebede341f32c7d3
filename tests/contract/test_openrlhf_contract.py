"""Every OpenRLHF command line the suite builds is accepted by OpenRLHF 0.11.2's real parser
(flag names, types, choices and its post-parse checks)."""

from __future__ import annotations


import pytest

from cluster_presets import command_lines, parse

pytestmark = pytest.mark.contract
pytest.importorskip("openrlhf", reason="needs openrlhf 0.11.2 (scripts/setup.sh ...,contract installs it)")


def test_every_cluster_preset_builds_a_command_line_the_real_parser_accepts(tmp_path):
    lines = command_lines(tmp_path)
    genrm = {"genrm_rlvr_qwen3_8b", "genrm_ralign_qwen3_8b", "genrm_hybrid_qwen3_8b", "genrm_rlvr_qwen3_14b",
             "genrm_ralign_qwen3_14b", "genrm_hybrid_qwen3_14b"}
    policy = {"policy_ppo_qwen3_8b", "policy_ppo_qwen3_8b_base", "policy_ppo_qwen3_8b_rlvr", "policy_ppo_qwen3_8b_ralign"}
    assert genrm | policy <= set(lines)
    results = dict(zip(lines, parse(list(lines.values()))))
    for preset, res in results.items():
        assert res["ok"], f"{preset}: {res['error']}"
        args = res["args"]
        if preset in genrm:
            assert args["reward"]["remote_url"][0].endswith("reward_func.py")
        else:  # the policy's pairwise reward runs in an agent executor (it sees truncation)
            assert args["train"]["agent_func_path"].endswith("agent_func.py")
        assert args["data"]["apply_chat_template"] is True and args["data"]["label_key"] == "label"
        assert args["ckpt"]["save_hf"] is False  # no intermediate HF copies unless engine.hf_checkpoints > 0
        assert args["logger"]["tensorboard_dir"].endswith("tensorboard")
        if preset in genrm:  # group RL: the suite's grpo is OpenRLHF's group_norm with a KL loss
            assert args["algo"]["advantage"]["estimator"] == "group_norm"
            assert args["rollout"]["n_samples_per_prompt"] == 8 and args["algo"]["kl"]["use_loss"] is True
        if preset in policy:  # PPO with a critic initialised from the policy
            assert args["algo"]["advantage"]["estimator"] == "gae"
            assert args["critic"]["model_name_or_path"] == args["actor"]["model_name_or_path"] == "Qwen/Qwen3-8B"
            assert args["actor"]["adam"]["lr"] == 5e-7 and args["critic"]["adam"]["lr"] == 9e-6
    assert results["genrm_ralign_qwen3_14b"]["args"]["vllm"]["tensor_parallel_size"] == 2


def test_a_wrong_flag_and_a_failing_post_parse_check_are_rejected(tmp_path):
    good = ["--actor.model_name_or_path", "m", "--reward.remote_url", "r.py", "--algo.advantage.estimator",
            "group_norm", "--rollout.n_samples_per_prompt", "4"]
    flat = good + ["--n_samples_per_prompt", "4"]  # the pre-0.10.2 flat spelling
    one_sample = [a if a != "4" else "1" for a in good]
    ok, wrong, assertion = parse([good, flat, one_sample])
    assert ok["ok"]
    assert not wrong["ok"] and "unrecognized arguments: --n_samples_per_prompt" in wrong["error"]
    assert not assertion["ok"] and "n_samples_per_prompt > 1" in assertion["error"]
