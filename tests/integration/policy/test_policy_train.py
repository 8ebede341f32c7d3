"""Policy training: the local engine against a trained tiny GenRM (runs linked), references
written by a reference model, the OpenRLHF reward module, and the cluster launch files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from genrm.testing import rule_responder
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def _run(stage, overrides):
    obj, cfg = finalize(*compose(stage, overrides))
    return execute(stage, obj, cfg)


def test_smoke_policy_trains_against_a_trained_genrm_and_links_the_runs(tmp_path, cli, python):
    genrm_out = tmp_path / "genrm"
    proc = cli([python, "-m", "genrm.train", "experiment=smoke_genrm", f"output_dir={genrm_out}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    genrm_db = f"sqlite:///{genrm_out / 'mlflow.db'}"
    genrm_run = MlflowClient(genrm_db).search_runs(
        [MlflowClient(genrm_db).get_experiment_by_name("smoke_genrm").experiment_id])[0]
    out = tmp_path / "policy"
    proc = cli([python, "-m", "policy_rlhf.train", "experiment=smoke_policy", f"output_dir={out}",
                f"genrm.model=runs:/{genrm_run.info.run_id}", f"genrm_tracking_uri={genrm_db}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("smoke_policy").experiment_id])[0]
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "policy_train"
    assert run.data.tags["genrm_run_id"] == genrm_run.info.run_id  # linked to the GenRM's run
    assert run.data.tags["genrm_model"] == genrm_run.data.tags["checkpoint_path"]
    assert len(client.get_metric_history(run.info.run_id, "policy_reward/win_rate")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["judge_calls"]["genrm"]["requests"] > 0 and summary["prompts"]["by_domain"] == \
        {"stem": 12, "code": 4, "if": 4, "general": 4}
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(run.data.tags["checkpoint_path"]).num_parameters() > 0


def test_references_are_generated_once_by_a_reference_model_and_stored(tmp_path, tiny_model):
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"say {i}", "domain": "general"}) + "\n"
                            for i in range(3)))
    base = [f"output_dir={tmp_path / 'out'}", "data=smoke_prompts", f"data.smoke_prompts.path={data}",
            "dry_run=false", "llm@reference=transformers", f"reference.model={tiny_model}", "reference.params.device=cpu",
            "reference.sampling.max_tokens=6", "reference.sampling.temperature=1.0", "reference.sampling.seed=0",
            f"genrm.model={tiny_model}", "llm@genrm=transformers"]
    from policy_rlhf.train import prepare_prompts

    obj, _ = finalize(*compose("policy_train", base))
    first = prepare_prompts(obj, Path(obj.output_dir))
    assert first["report"]["references"]["generated"] + first["report"]["references"]["failed"] == 3
    stored = [json.loads(line) for line in (tmp_path / "out" / "data" / "prompts.jsonl").open()]
    assert all(r["reference"] for r in stored) and len(stored) == first["report"]["prompts"]
    again = prepare_prompts(obj, Path(obj.output_dir))  # from the cache: same references, no generation cost
    assert [i.reference for i in again["items"]] == [i.reference for i in first["items"]]


def _prepare_cluster(tmp_path, preset, *extra, genrm="/ckpt/genrm"):
    return _run("policy_train", [f"experiment={preset}", "dry_run=true", f"output_dir={tmp_path / preset}",
                                 "data=smoke_prompts", *([f"genrm.model={genrm}"] if genrm else []), *extra])


def test_openrlhf_reference_reward_compares_with_the_reference_16_at_once(tmp_path, tiny_model):
    """Reference mode inside OpenRLHF: the generated agent executor, 16 samples at once in one
    event loop as OpenRLHF's vLLM actor runs them, each judged against its reference."""
    from transformers import AutoTokenizer

    from openrlhf_fakes import load_executor, run_executor

    prepared = _prepare_cluster(tmp_path, "policy_ppo_qwen3_8b")
    rows = [json.loads(line) for line in Path(prepared["dataset"]).open()]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with LoopbackServer(responder=rule_responder) as srv:
        Path(prepared["reward_module"]).with_name("genrm_endpoint").write_text(srv.base_url)
        # symmetric scale: a win is 1, a loss -1, a split 0; an empty response gets the floor (0 -> -1).
        # The shipped references carry no <<good>>: the rule judge prefers a <<good>> response, else
        # position A, so two plain responses split. The marker inside a thinking block is not seen.
        cases = ["a great answer <<good>>", "<think><<good>></think>meh", "ok", ""] * 4
        results = run_executor(load_executor(prepared["reward_module"]), tokenizer,
                               [rows[k % len(rows)]["label"] for k in range(len(cases))], cases)
    assert [r["reward"] for r in results] == [1.0, 0.0, 0.0, -1.0] * 4
    assert all(set(r["extra_logs"]) >= {"win_rate", "judge_failures", "swap_consistent", "reward_error"}
               for r in results)


def test_cluster_launch_files_ppo_and_group_mode(tmp_path):
    ppo = _prepare_cluster(tmp_path, "policy_ppo_qwen3_8b_ralign")
    script = Path(ppo["script"]).read_text()
    assert "vllm serve /ckpt/genrm" in script and "#SBATCH --nodes=3" in script
    args = ppo["openrlhf_args"]
    assert args[args.index("--algo.advantage.estimator") + 1] == "gae"
    assert "--critic.model_name_or_path" in args and "--train.agent_func_path" in args
    assert "--reward.remote_url" not in args  # the pairwise reward runs in the agent executor (it sees truncation)
    group = _prepare_cluster(tmp_path, "policy_ppo_qwen3_8b_base", "pairwise.mode=group", "algo.estimator=grpo",
                             "algo.n_samples_per_prompt=8", genrm=None)  # the base preset's own GenRM
    gargs = group["openrlhf_args"]
    assert "--train.agent_func_path" in gargs and "--reward.remote_url" not in gargs
    assert "AgentExecutor = make_executor(SETTINGS)" in Path(group["reward_module"]).read_text()
    assert "vllm serve Qwen/Qwen3-8B" in Path(group["script"]).read_text()
