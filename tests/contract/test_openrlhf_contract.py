"""Every OpenRLHF command line the suite builds is accepted by OpenRLHF 0.11.2's real parser
(flag names, types, choices and its post-parse checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import genrm_fixtures as fx
from plumbing.config.hydra_app import compose, conf_dir, execute, finalize
from plumbing.config.validate import ConfigError

pytestmark = pytest.mark.contract
pytest.importorskip("openrlhf", reason="needs openrlhf 0.11.2 (scripts/setup.sh ...,contract installs it)")

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "openrlhf_parse.py"
CLUSTER_STAGES = ("genrm_train", "policy_train")


def parse(argvs):
    proc = subprocess.run([sys.executable, str(HELPER)], input=json.dumps(argvs), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _cluster_presets():
    for path in sorted((conf_dir() / "experiment").glob("*.yaml")):
        stage = (yaml.safe_load(path.read_text()) or {}).get("stage")
        if stage in CLUSTER_STAGES and not path.stem.startswith("_"):
            yield path.stem, stage


def _local_data(obj, tmp: Path):
    """Point each data set of a preset at a small local file in its format (nothing from the hub)."""
    ralign = fx.write(tmp / "ralign.jsonl", fx.ralign_records())
    files = {"genrm.benchmarks.ralign_bmk": ralign, "policy_rlhf.prompts.from_pairs": ralign,
             "genrm.benchmarks.rationalerm": fx.write(tmp / "rrm.jsonl", fx.rationalerm_records()[:2])}  # labelled
    return [f"data.{name}.path={files[d.format]}" for name, d in obj.data.items() if d.format in files]


# What a user gives on the command line for presets that leave it open (the GenRM to use).
USER_VALUES = {"policy_train": ["genrm.model=/ckpt/genrm"]}


def command_lines(tmp: Path):
    out = {}
    for preset, stage in _cluster_presets():
        base = [f"experiment={preset}", f"output_dir={tmp / preset}", "dry_run=true"]
        try:
            obj, _ = compose(stage, base)
        except ConfigError:
            base += USER_VALUES[stage]
            obj, _ = compose(stage, base)
        if obj.engine.name != "openrlhf":
            continue
        obj, cfg = finalize(*compose(stage, base + _local_data(obj, tmp / "data")))
        summary = execute(stage, obj, cfg)
        out[preset] = summary["openrlhf_args"]
    return out


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
        assert args["reward"]["remote_url"][0].endswith("reward_func.py")
        assert args["data"]["apply_chat_template"] is True and args["data"]["label_key"] == "label"
        assert args["ckpt"]["save_hf"] is True and args["logger"]["tensorboard_dir"].endswith("tensorboard")
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
