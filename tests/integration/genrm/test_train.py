"""GenRM training: the local engine end to end on CPU, the OpenRLHF reward module as
OpenRLHF calls it, the cluster launch files, and the TensorBoard-to-MLflow bridge."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import genrm_fixtures as fx
from plumbing.engines.remote import response_of
from genrm.testing import rule_responder
from plumbing import tracking
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.launch.server import free_port
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def test_smoke_genrm_trains_a_tiny_model_on_cpu_and_leaves_a_run_and_a_checkpoint(tmp_path, cli, python):
    out = tmp_path / "smoke_genrm"
    proc = cli([python, "-m", "genrm.train", "experiment=smoke_genrm", f"output_dir={out}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("smoke_genrm").experiment_id])[0]
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "genrm_train"
    assert run.data.tags["reward"] == "ralign"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "reward")]
    assert steps == [1, 2, 3]  # one point per training step
    for name in ("genrm_reward/format_fail", "genrm_reward/label_correct", "genrm_reward/metarm_called", "kl"):
        assert name in run.data.metrics
    checkpoint = Path(run.data.tags["checkpoint_path"])
    # the console: one short line per logged step (every value is in MLflow), no dict lines
    assert re.search(r"step 1/3  loss \S+  reward \S+", proc.stdout + proc.stderr), proc.stderr[-2000:]
    assert "{'loss'" not in proc.stdout + proc.stderr and "'genrm_reward/" not in proc.stdout + proc.stderr
    # it ends by saying where everything is: what the next command names
    tail = proc.stdout.rstrip().splitlines()[-4:]
    assert tail == [f"[genrm_train] outputs:    {out}", f"[genrm_train] MLflow run: {run.info.run_id}",
                    f"[genrm_train] checkpoint: {checkpoint}",
                    f"[genrm_train] browse:     mlflow ui --backend-store-uri sqlite:///{out / 'mlflow.db'}"], tail
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    ids = tok.apply_chat_template([{"role": "user", "content": "A or B?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    assert model.generate(**ids, max_new_tokens=3).shape[1] > ids["input_ids"].shape[1]


def _module(path: Path):
    """Load the generated file the way OpenRLHF does (spec_from_file_location by path)."""
    spec = importlib.util.spec_from_file_location("reward_func", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


def _prepare(tmp_path, *overrides):
    data = fx.write(tmp_path / "data.jsonl", fx.ralign_records())
    base = ["experiment=genrm_ralign_qwen3_8b", "dry_run=true", f"output_dir={tmp_path / 'run'}",
            f"data.ralign_rl.path={data}", "swap_balance=false", *overrides]
    obj, cfg = finalize(*compose("genrm_train", base))
    return execute("genrm_train", obj, cfg)


def test_openrlhf_reward_module_per_sample_from_16_threads(tmp_path):
    prepared = _prepare(tmp_path)
    rows = [json.loads(line) for line in Path(prepared["dataset"]).open()]
    assert len(rows) == 6 and all(isinstance(r["prompt"], list) and json.loads(r["label"]) for r in rows)
    endpoint_file = Path(prepared["reward_module"]).parent / "metarm_endpoint"
    with LoopbackServer(responder=rule_responder) as srv:
        endpoint_file.write_text(srv.base_url)  # what the job's judge section writes when healthy
        reward_func = _module(Path(prepared["reward_module"]))
        prompt = "<|im_start|>user\nquestion<|im_end|>\n<|im_start|>assistant\n"
        # row 0 (gt A, #fact), row 1 (gt A, golden #fact): right-for-the-right-reason, right-for-a-wrong-reason
        cases = [(0, "A is right because of #fact. \\boxed{A}", 1.0), (1, "A sounds nicer #style \\boxed{A}", 0.0),
                 (0, "\\boxed{B}", 0.0), (0, "no verdict", 0.0)] * 4
        results = [None] * len(cases)

        def call(k):
            row, response, _ = cases[k]
            results[k] = reward_func([prompt + response + "<|im_end|>"], [prompt], [rows[row]["label"]])

        threads = [threading.Thread(target=call, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        metarm_calls = srv.chat_requests
    for (_, _, expected), res in zip(cases, results):
        assert set(res) == {"rewards", "scores", "extra_logs"}
        assert isinstance(res["rewards"], float) and res["rewards"] == expected == res["scores"]
        assert res["extra_logs"]["reward_error"] == 0.0 and set(res["extra_logs"]) >= {"format_fail", "metarm_correct"}
    assert metarm_calls == 2  # 8 label-correct calls, 2 distinct rationales: the rest from the cache


def test_openrlhf_reward_module_never_raises_when_the_metarm_is_down(tmp_path):
    prepared = _prepare(tmp_path, "metarm.max_retries=0")
    Path(prepared["reward_module"]).with_name("metarm_endpoint").write_text(f"http://127.0.0.1:{free_port()}/v1")
    label = json.loads(Path(prepared["dataset"]).read_text().splitlines()[0])["label"]
    res = _module(Path(prepared["reward_module"]))(["p#fact \\boxed{A}"], ["p"], [label])
    assert res["rewards"] == 0.0 and res["extra_logs"]["metarm_call_fail"] == 1.0
    broken = _module(Path(prepared["reward_module"]))(["x"], ["x"], ["not json"])  # a bug-level error
    assert broken["rewards"] == 0.0 and broken["extra_logs"]["reward_error"] == 1.0


def test_response_is_cut_out_of_the_decoded_query():
    prompt = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    assert response_of(prompt + "I pick \\boxed{A}<|im_end|>", prompt) == "I pick \\boxed{A}"
    assert response_of(prompt + "text<|im_end|><|endoftext|>", prompt) == "text"
    # the prompt did not survive the tokenizer round trip: cut after the last assistant header
    assert response_of("<|im_start|>user\nq \n<|im_start|>assistant\nanswer<|im_end|>", prompt) == "answer"


def test_cluster_launch_files_for_each_reward(tmp_path):
    ralign = _prepare(tmp_path / "r")
    script = Path(ralign["script"]).read_text()
    assert subprocess.run(["bash", "-n", ralign["script"]]).returncode == 0
    assert "#SBATCH --nodes=3" in script  # 2 for training + 1 for the MetaRM server
    assert "vllm serve Qwen/Qwen3-32B" in script and "metarm_endpoint" in script
    assert "ray start --head" in script and "ray_job " in script and "openrlhf.cli.train_ppo_ray" in script
    assert "plumbing.launch.finish" in script and "--exit-code" in script
    data = fx.write(tmp_path / "d.jsonl", fx.ralign_records())
    for monitor, nodes in (([], 3), (["~llm@monitor", "~monitor"], 2)):  # the outcome reward calls no judge; its monitor does
        obj, cfg = finalize(*compose("genrm_train", ["experiment=genrm_rlvr_qwen3_8b", "dry_run=true",
                                                     f"output_dir={tmp_path / f'v{nodes}'}",
                                                     f"data.ralign_rl.path={data}", *monitor]))
        text = Path(execute("genrm_train", obj, cfg)["script"]).read_text()
        assert f"#SBATCH --nodes={nodes}" in text
        assert ("vllm serve Qwen/Qwen3-32B" in text) == bool(nodes == 3)


def test_finish_copies_tensorboard_scalars_and_ends_the_run(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from plumbing.launch.finish import finish

    tb = tmp_path / "tb"
    writer = SummaryWriter(str(tb))
    for step in range(1, 4):
        writer.add_scalar("train/reward", 0.1 * step, step)
        writer.add_scalar("train/kl", 0.01 * step, step)
        writer.add_scalar("rollout/metarm_correct", 0.5, step)
    writer.close()
    uri = tracking.tracking_uri(None, tmp_path)
    with tracking.start_run(uri=uri, experiment="e", run_name="job", tags={"stage": "genrm_train"}) as run:
        run.detach()  # a submitted job: the run stays open until the job ends it
    client = MlflowClient(uri)
    assert client.get_run(run.run_id).info.status == "RUNNING"
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    assert finish(uri, run.run_id, 0, tb, ckpt) == "FINISHED"
    r = client.get_run(run.run_id)
    assert r.info.status == "FINISHED" and r.data.tags["checkpoint_path"] == str(ckpt)
    assert [(m.step, round(m.value, 3)) for m in client.get_metric_history(run.run_id, "train/reward")] == \
        [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert finish(uri, run.run_id, 3, None, None) == "FAILED"


def test_local_training_resumes_from_its_last_saved_step(tmp_path):
    """A job killed (or preempted) after step 2 of 3 runs again from step 2, not from zero."""
    out = tmp_path / "out"
    overrides = ["experiment=smoke_genrm", f"output_dir={out}", "algo.save_steps=1"]
    execute("genrm_train", *finalize(*compose("genrm_train", overrides)))
    trl = out / "trl"
    shutil.rmtree(trl / "checkpoint-3")  # as if the job died before its last save
    kept = (trl / "checkpoint-1" / "trainer_state.json").stat().st_mtime_ns
    execute("genrm_train", *finalize(*compose("genrm_train", overrides)))
    assert json.loads((trl / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3
    assert (trl / "checkpoint-1" / "trainer_state.json").stat().st_mtime_ns == kept  # steps 1-2 not trained again


def test_a_reward_from_outside_the_suite_declares_the_sample_fields_it_reads(tmp_path, monkeypatch):
    """A reward named by its class path that reads golden checklists is refused, naming the
    field, on data without them: the stage reads the reward's declaration, not its name."""
    from genrm.train import load_samples
    from plumbing.errors import SuiteError

    (tmp_path / "my_rewards.py").write_text(
        "from genrm.rewards.outcome import OutcomeReward\n"
        "class ChecklistOutcome(OutcomeReward):\n"
        "    name = 'checklist_outcome'\n"
        "    needs_fields = ('gt_checklist',)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = fx.write(tmp_path / "data.jsonl", fx.ralign_records())
    obj, _ = compose("genrm_train", ["experiment=genrm_ralign_qwen3_8b", "dry_run=true", f"output_dir={tmp_path / 'o'}",
                                     f"data.ralign_rl.path={data}", "reward=outcome",
                                     "reward._target_=my_rewards.ChecklistOutcome", "reward.name=checklist_outcome"])
    with pytest.raises(SuiteError, match=r"reward=checklist_outcome reads gt_checklist of its samples"):
        load_samples(obj)
