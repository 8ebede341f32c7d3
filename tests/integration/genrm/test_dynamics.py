"""Training dynamics end to end: a real tiny TRL GenRM training with the outcome reward and a
monitor (the rule MetaRM on a loopback server) leaves genrm_dynamics/* histories in MLflow,
one point per step, and the same rewards as without the monitor; OpenRLHF's TensorBoard
scalars of the same names reach MLflow under the same names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import genrm_fixtures as fx
from genrm.testing import rule_responder
from plumbing import tracking
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration
DYN = "genrm_dynamics/"


def _train(out: Path, data: Path, *extra: str) -> MlflowClient:
    overrides = ["experiment=smoke_genrm", "reward=outcome", f"output_dir={out}", f"data.smoke_pairs.path={data}", "swap_balance=false", "algo.logging_steps=1", "algo.max_steps=3",
                 # a short warm start on the golden judgments: rollouts that give a verdict, some right
                 "warm_start.steps=30", "warm_start.learning_rate=1e-2", "warm_start.warmup_steps=3",
                 "warm_start.batch_size=6", *extra]
    execute("genrm_train", *finalize(*compose("genrm_train", overrides)))
    return MlflowClient(f"sqlite:///{out / 'mlflow.db'}")


def _history(client: MlflowClient, out: Path, name: str):
    run = client.search_runs([client.get_experiment_by_name("smoke_genrm").experiment_id])[0]
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]


def test_outcome_run_with_a_monitor_logs_dynamics_per_step_and_the_same_rewards(tmp_path):
    data = fx.write(tmp_path / "data.jsonl", fx.ralign_records())
    with LoopbackServer(responder=rule_responder) as srv:
        monitor = ["llm@monitor=openai", f"monitor.base_url={srv.base_url}", "monitor.model=metarm",
                   "monitor.max_retries=0"]
        watched = _train(tmp_path / "watched", data, *monitor)
    plain = _train(tmp_path / "plain", data, f"model.path={tmp_path / 'watched' / 'warm_start' / 'checkpoint'}",
                   "warm_start.steps=0")
    w, p = tmp_path / "watched", tmp_path / "plain"
    # the monitor measures, never rewards: the same rewards and diagnostics at every step
    for name in ("reward", "genrm_reward/label_correct", "genrm_reward/format_fail"):
        assert _history(watched, w, name) == _history(plain, p, name), name
    outcome = _history(watched, w, DYN + "outcome_reward")
    assert [s for s, _ in outcome] == [1, 2, 3]  # one point per step
    assert outcome == _history(watched, w, "genrm_reward/label_correct")
    den = _history(watched, w, DYN + "rationale_correct_den")
    num = _history(watched, w, DYN + "rationale_correct_num")
    ratio = _history(watched, w, DYN + "rationale_correct")
    assert [s for s, _ in den] == [1, 2, 3] and [s for s, _ in ratio] == [s for s, v in den if v > 0]
    assert ratio, "no label-correct rollout in 3 steps: the warm start did not take"
    assert all(v == pytest.approx(dict(num)[s] / dict(den)[s]) for s, v in ratio)
    # r5's golden judgment is <<garbage>>: the rule MetaRM gives no verdict, counted, not raised
    fail = _history(watched, w, DYN + "monitor_fail")
    summary = json.loads((w / "summary.json").read_text())["dynamics"]
    assert summary["sources"]["rationale_correct"] == "monitor"
    rollouts_per_step = 8  # tiny_cpu: rollout_batch_size 2 x n_samples_per_prompt 4
    assert summary["monitor_failed"] == round(sum(v for _, v in fail) * rollouts_per_step)
    assert summary["monitor_judged"] == round(sum(v for _, v in den + fail) * rollouts_per_step)
    # without a monitor: outcome reward only, no rationale signal, nothing else changed
    assert _history(plain, p, DYN + "outcome_reward") == outcome
    assert not _history(plain, p, DYN + "rationale_correct")
    assert json.loads((p / "summary.json").read_text())["dynamics"]["sources"]["rationale_correct"] is None


def test_openrlhf_dynamics_reach_mlflow_under_the_local_engines_names(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from plumbing.launch.finish import finish

    tb = tmp_path / "tb"
    writer = SummaryWriter(str(tb))
    for step, (num, den) in enumerate([(0.25, 0.5), (0.0, 0.0), (0.5, 0.5)], start=1):
        writer.add_scalar("train/genrm_dynamics/outcome_reward", 0.5 + 0.1 * step, step)
        writer.add_scalar("train/genrm_dynamics/rationale_correct_num", num, step)
        writer.add_scalar("train/genrm_dynamics/rationale_correct_den", den, step)
        writer.add_scalar("train/label_correct", 0.5, step)
    writer.close()
    uri = tracking.tracking_uri(None, tmp_path)
    with tracking.start_run(uri=uri, experiment="e", run_name="job", tags={"stage": "genrm_train"}) as run:
        run.detach()
    assert finish(uri, run.run_id, 0, tb, None) == "FINISHED"
    client = MlflowClient(uri)

    def hist(name):
        return [(m.step, round(m.value, 6)) for m in client.get_metric_history(run.run_id, name)]

    assert hist("genrm_dynamics/outcome_reward") == [(1, 0.6), (2, 0.7), (3, 0.8)]
    assert hist("genrm_dynamics/rationale_correct") == [(1, 0.5), (3, 1.0)]  # step 2: nothing judged
    assert hist("train/label_correct") == [(1, 0.5), (2, 0.5), (3, 0.5)]  # OpenRLHF's own names stay
    assert not hist("train/genrm_dynamics/outcome_reward")


def _reward_module(tmp_path, monitor_url):
    import importlib.util

    data = fx.write(tmp_path / "data.jsonl", fx.ralign_records())
    overrides = ["experiment=genrm_rlvr_qwen3_8b", "dry_run=true", f"output_dir={tmp_path / 'run'}",
                 f"data.ralign_rl.path={data}", "swap_balance=false", "llm@monitor=openai",
                 f"monitor.base_url={monitor_url}", "monitor.model=metarm", "monitor.max_retries=0",
                 "dynamics.fraction=1.0"]  # every label-correct rollout (the preset measures a quarter)
    prepared = execute("genrm_train", *finalize(*compose("genrm_train", overrides)))
    spec = importlib.util.spec_from_file_location("reward_func", prepared["reward_module"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [json.loads(line) for line in Path(prepared["dataset"]).open()]
    return module.reward_func, rows


def test_openrlhf_reward_module_logs_the_dynamics_and_a_dead_monitor_never_stops_it(tmp_path):
    from plumbing.launch.server import free_port

    prompt = "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    cases = [(0, "A is right because of #fact. \\boxed{A}", 1.0, 1.0), (1, "A sounds nicer #style \\boxed{A}", 1.0, 0.0),
             (2, "\\boxed{B}", 0.0, None)]  # (row, response, reward, MetaRM-correct)
    with LoopbackServer(responder=rule_responder) as srv:
        reward_func, rows = _reward_module(tmp_path / "up", srv.base_url)
        out = [reward_func([prompt + text + "<|im_end|>"], [prompt], [rows[row]["label"]]) for row, text, _, _ in cases]
    for (_, _, reward, correct), res in zip(cases, out):
        logs = res["extra_logs"]
        assert res["rewards"] == reward and logs[DYN + "outcome_reward"] == reward and logs["reward_error"] == 0
        assert logs[DYN + "rationale_correct_den"] == (correct is not None)
        assert logs[DYN + "rationale_correct_num"] == (correct or 0.0) and logs[DYN + "monitor_fail"] == 0
    # a monitor that is down: 30 calls (the guard of a judge would stop the job after 20), same rewards
    reward_func, rows = _reward_module(tmp_path / "down", f"http://127.0.0.1:{free_port()}/v1")
    for k in range(30):
        res = reward_func([prompt + f"#fact {k} \\boxed{{A}}<|im_end|>"], [prompt], [rows[0]["label"]])
        assert res["rewards"] == 1.0 and res["extra_logs"][DYN + "monitor_fail"] == 1.0
