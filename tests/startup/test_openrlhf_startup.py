"""The start-up tier: every cluster preset and every OpenRLHF step of the paper pipelines
gets through OpenRLHF 0.11.2's real start-up (parser, post-parse checks, ``train()`` with its
assertions, ``RayActorGroup`` and ``create_vllm_engines`` with their placement groups) on a
simulated Ray cluster exactly as large as the one its rendered job script starts; and the
plan's own checks agree with that start-up on layouts users might give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import genrm_fixtures as fx
from cluster_presets import cluster_presets, dry_run, ray_cluster, start
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.config.validate import ConfigError

pytestmark = pytest.mark.startup
pytest.importorskip("openrlhf", reason="needs openrlhf 0.11.2 (scripts/setup.sh ...,contract installs it)")


def _case(summary):
    script = Path(summary["script"]).read_text()
    return {"argv": summary["openrlhf_args"], **ray_cluster(script)}


VARIANTS = {  # beyond the presets as they are: the other algorithm and pairwise mode, one machine
    "slurm": [],
    "local": ["cluster=local"],
}
EXTRA = {
    "genrm_train": {"ppo": ["algo=ppo"]},
    "policy_train": {"group": ["algo=grpo", "pairwise.mode=group"], "grpo_reference": ["algo=grpo"]},
}


def test_every_cluster_preset_starts(tmp_path):
    cases, names = [], []
    for preset, stage in cluster_presets():
        for variant, extra in {**VARIANTS, **EXTRA.get(stage, {})}.items():
            summary = dry_run(preset, stage, tmp_path / variant, extra)
            cases.append(_case(summary))
            names.append(f"{preset} [{variant}]")
    results = start(cases)
    assert len(results) == len(cases) >= 30
    failed = {n: f"{r['stage']}: {r['error']}" for n, r in zip(names, results) if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    for name, case, r in zip(names, cases, results):
        vllm = [p for p in r["placed"] if p.startswith(("RolloutRayActor", "vLLM engine"))]
        assert vllm, name  # the engines were created on the cluster, not skipped


@pytest.mark.parametrize("preset,trainings", [("ralign_paper", 4 + 7)])  # both families and RRM-32B
def test_every_step_of_the_paper_pipelines_starts(preset, trainings, tmp_path):
    data = fx.write(tmp_path / "rl.jsonl", fx.ralign_records())
    out = tmp_path / "out"
    obj, cfg = finalize(*compose("pipeline", [
        f"experiment={preset}", "dry_run=true", f"output_dir={out}",
        f"+stage_overrides.genrm_train=['data.ralign_rl.path={data}']",
        "+stage_overrides.policy_train=['data=smoke_prompts']"]))
    execute("pipeline", obj, cfg)
    jobs = sorted(out.glob("*/openrlhf/train.sbatch"))
    assert len(jobs) == trainings  # a GenRM training per trained variant, a policy training per variant
    cases = [{"argv": json.loads((j.parent / "openrlhf_args.json").read_text()), **ray_cluster(j.read_text())}
             for j in jobs]
    results = start(cases)
    assert all(r["ok"] for r in results), {str(j): r.get("error") for j, r in zip(jobs, results) if not r["ok"]}


LAYOUTS = [  # (overrides, what OpenRLHF says) on 2 nodes x 8 GPUs
    ([], True),
    (["engine.vllm_num_engines=8"], False),  # 8 x 1 != 16 colocated GPUs: OpenRLHF's assertion
    (["engine.vllm_tensor_parallel_size=2"], True),
    (["engine.vllm_tensor_parallel_size=2", "engine.vllm_num_engines=4"], False),
    (["engine.colocate_all=false", "engine.role_nodes=1", "engine.role_gpus_per_node=4"], True),  # 12 + 4 vLLM
    (["engine.colocate_all=false", "engine.role_nodes=1", "engine.role_gpus_per_node=4",
      "engine.vllm_num_engines=8"], False),  # 12 + 8 > 16: placement would wait forever
    (["engine.colocate_all=false", "engine.role_nodes=2", "engine.role_gpus_per_node=8"], False),  # 48 > 16
    (["engine.vllm_tensor_parallel_size=3"], False),  # a TP group cannot sit on one 8-GPU node
    (["algo.train_batch_size=120"], False),  # DeepSpeed: 120 is not micro 2 x steps x 16 GPUs
    (["algo.rollout_batch_size=8"], False),  # OpenRLHF: 1 x 8 / 2 sample batches < 16 actor processes
]


def test_the_plan_refuses_exactly_what_openrlhf_would(tmp_path):
    """For layouts a user might give: the plan's checks and OpenRLHF's real start-up agree,
    and the stage refuses at start (naming the key) exactly those the start-up would fail."""
    from plumbing.engines.openrlhf import ppo_args
    from plumbing.engines.openrlhf_plan import problems, stage_plan

    data = fx.write(tmp_path / "rl.jsonl", fx.ralign_records())
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_func(queries, prompts, labels):\n    return [0.0] * len(queries)\n")
    cases, found = [], []
    for i, (overrides, _) in enumerate(LAYOUTS):
        base = ["experiment=policy_ppo_qwen3_8b", "genrm.model=/ckpt/genrm", "llm@genrm=openai",
                "genrm.base_url=http://judge:8000/v1", f"data.ralign_rl_prompts.path={data}", "dry_run=true",
                f"output_dir={tmp_path / str(i)}", *overrides]
        try:
            compose("policy_train", base)
            refused = None
        except ConfigError as e:
            refused = str(e)
        obj, _ = compose("policy_train", base, validate_config=False)
        plan = stage_plan(obj.engine, obj.algo, obj.cluster, [obj.genrm])
        found.append((problems(plan, obj.engine, obj.algo), refused))
        argv = ppo_args(model="m", algo=obj.algo, engine=obj.engine, plan=plan, dataset="d.jsonl", ckpt_dir="c",
                        tensorboard_dir="t", seed=0, reward_module=str(reward))
        cases.append({"argv": argv, "nodes": 2, "gpus_per_node": 8, "cpus_per_node": 96})
    for (overrides, expected), (plan_problems, refused), r in zip(LAYOUTS, found, start(cases)):
        assert (not plan_problems) == expected == r["ok"], (overrides, plan_problems, r)
        assert (refused is None) == expected, (overrides, refused)
        if refused:
            assert all(key in refused for key, _ in plan_problems)  # the message names the keys


def test_the_readme_table_is_the_plan_code_s():
    from plumbing.engines.openrlhf_plan import TABLE_HEADER, cluster_presets, preset_rows
    from plumbing.report import markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown(TABLE_HEADER, preset_rows(cluster_presets())) in readme


def test_a_changed_configuration_does_not_resume_the_old_runs_state(tmp_path, tiny_model):
    """``--ckpt.load_enable`` resumes a requeued job; the state folder is named by what the
    run depends on, so a rerun with the same configuration resumes and a changed one starts
    fresh (in the same output folder). (The model's tokenizer must be here for the data to be
    final: a tiny one stands in for Qwen3-8B's.)"""
    def state(extra):
        argv = dry_run("genrm_rlvr_qwen3_8b", "genrm_train", tmp_path, [f"model.path={tiny_model}", *extra])[
            "openrlhf_args"]
        assert "--ckpt.load_enable" in argv
        return argv[argv.index("--ckpt.path") + 1]

    first = state([])
    assert state([]) == first  # a requeue or an identical rerun: the same state
    assert state(["algo.actor_lr=2e-6"]) != first  # another configuration: its own state
    assert state(["limit=3"]) != first  # other training data: its own state
