"""genrm_train: train a GenRM with the outcome, R-Align or hybrid reward.

    python -m genrm.train experiment=smoke_genrm                       # local engine (TRL), CPU
    python -m genrm.train experiment=genrm_ralign_qwen3_8b dry_run=true  # OpenRLHF on Slurm: show the launch
    python -m genrm.train engine=openrlhf reward=ralign model=qwen3_8b data=ralign_rl cluster=slurm ...

``engine=local``: TRL GRPO/RLOO in this process; the MetaRM / MetaJudge in process or a
`transformers serve` the run starts; TRL's log lines and the reward diagnostics go to the
stage's MLflow run; the HF checkpoint is saved at the end (tag ``checkpoint_path``).
``engine=openrlhf``: writes the prepared data set, the reward module for
``--reward.remote_url`` and one sbatch script (the MetaRM's ``vllm serve`` on its own node
with a health wait, a Ray cluster across the other nodes, ``ray job submit`` of
``openrlhf.cli.train_ppo_ray``, then TensorBoard metrics copied into the MLflow run), and
submits it (``cluster=slurm``) or runs it here (``cluster=local``, on a GPU node).
``dry_run=true`` writes and prints all of it and submits nothing.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from genrm.records import PairwiseSample
from genrm.rewards import reward_class
from genrm.rewards.base import Judge
from genrm.training import TRLReward, training_examples
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import (AlgoConfig, DataConfig, EngineConfig, LLMConfig, ModelConfig, Problems,
                                    RewardConfig, StageConfig, check_engine_algo, check_produces)
from plumbing.data import load_data
from plumbing.errors import SuiteError
from plumbing.tracking import StageRun

ROLES = ("metarm", "metajudge")


@dataclass
class LaunchConfig:
    """Cluster launch of engine=openrlhf (see plumbing/launch/slurm.py)."""

    judge_port: int = 8000
    judge_startup_timeout_s: int = 1800
    ray_port: int = 6379
    ray_dashboard_port: int = 8265
    python: str = "python3"


@dataclass
class GenRMTrainConfig(StageConfig):
    stage: str = "genrm_train"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: Dict[str, DataConfig] = field(default_factory=dict)
    reward: RewardConfig = field(default_factory=RewardConfig)
    metarm: Optional[LLMConfig] = None  # the ralign reward's judge
    metajudge: Optional[LLMConfig] = None  # the hybrid reward's judge
    engine: EngineConfig = field(default_factory=EngineConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    swap_balance: bool = True  # show each sample in a random order so A/B labels are balanced
    limit: Optional[int] = None  # at most this many training samples
    launch: LaunchConfig = field(default_factory=LaunchConfig)

    def check(self) -> Problems:
        p = super().check()
        if not self.data:
            p.append(("data", "give the training data, e.g. data=ralign_rl"))
        p += check_produces(self.data, "pairwise")
        p += check_engine_algo(self.engine, self.algo)
        try:
            needs = reward_class(self.reward.name).needs
        except KeyError:
            needs = ()  # reported by RewardConfig.check
        for role in needs:
            if getattr(self, role) is None:
                p.append((role, f"reward={self.reward.name} needs a {role}: choose one, e.g. llm@{role}=openai"))
        if self.engine.name == "openrlhf":
            for role in needs:
                llm = getattr(self, role)
                if llm is not None and llm.kind != "openai":
                    p.append((f"{role}.kind", "engine=openrlhf reaches judges over HTTP: use llm@"
                                              f"{role}=vllm_serve (started by the job) or llm@{role}=openai"))
                if llm is not None and llm.serve.launcher == "transformers":
                    p.append((f"{role}.serve.launcher", "on the cluster the job starts judges with vllm serve"))
        return p


SCHEMA = GenRMTrainConfig


def load_samples(cfg: GenRMTrainConfig) -> List[PairwiseSample]:
    samples: List[PairwiseSample] = []
    for d in cfg.data.values():
        items, _ = load_data(d)
        samples += items
    samples = [s for s in samples if s.gt_label]  # a reward needs the golden verdict
    if cfg.limit:
        samples = samples[: cfg.limit]
    if cfg.reward.name == "hybrid" and not any(s.gt_checklist for s in samples):
        raise SuiteError("reward=hybrid needs golden checklists; these data sets have none "
                         "(use data=rationalerm_train, or a data set with checklists)")
    if not samples:
        raise SuiteError("no training samples with a golden label")
    return samples


def needed_roles(cfg: GenRMTrainConfig) -> List[str]:
    return [r for r in reward_class(cfg.reward.name).needs if getattr(cfg, r) is not None]


# ---------------------------------------------------------------------------- engine=local
def run_local(cfg: GenRMTrainConfig, samples: List[PairwiseSample], tracker: StageRun) -> Dict[str, Any]:
    from plumbing.engines.local import train_local
    from plumbing.llm.registry import open_backend
    from plumbing.llm.types import SamplingParams
    from plumbing.models import resolve_model

    out = Path(cfg.output_dir)
    model_path = resolve_model(cfg.model)
    examples = training_examples(samples, cfg.swap_balance, cfg.seed)
    import contextlib

    with contextlib.ExitStack() as stack:
        judges = {}
        for role in needed_roles(cfg):
            llm = getattr(cfg, role)
            judges[role] = Judge(stack.enter_context(open_backend(llm, out, role)), SamplingParams.from_config(llm.sampling))
        reward = reward_class(cfg.reward.name).from_config(cfg.reward, judges)
        print(f"[genrm_train] local engine: {cfg.algo.estimator} on {len(examples)} prompts, reward={cfg.reward.name}")
        checkpoint = train_local(model_path, examples, TRLReward(reward), cfg.algo, cfg.engine, out, tracker, cfg.seed)
        calls = {role: getattr(j.backend, "inner", j.backend).stats.as_dict() for role, j in judges.items()}
    tracker.set_tags({"checkpoint_path": str(checkpoint), "reward": cfg.reward.name})
    summary = {"checkpoint": str(checkpoint), "examples": len(examples), "judge_calls": calls}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    tracker.log_artifact(out / "summary.json")
    return summary


# ---------------------------------------------------------------------------- engine=openrlhf
def prepare_openrlhf(cfg: GenRMTrainConfig, samples: List[PairwiseSample], tracker: StageRun,
                     finish_in_job: bool = True) -> Dict[str, Any]:
    """Write the data set, the reward module and the job script; return what was written.

    ``finish_in_job``: the job's last step copies the metrics into the MLflow run and ends it
    (a submitted job); otherwise the caller does that after running the script."""
    from plumbing.engines.openrlhf import ppo_args, write_reward_module
    from plumbing.launch.server import LocalServer
    from plumbing.launch.slurm import JobSpec, JudgeSection, RaySection, shell_join, write

    out = Path(cfg.output_dir)
    job_dir = out / "openrlhf"
    data_path = job_dir / "train.jsonl"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    with open(data_path, "w") as fh:
        for ex in training_examples(samples, cfg.swap_balance, cfg.seed):
            fh.write(json.dumps({"prompt": ex["prompt"], "label": ex["sample"]}, ensure_ascii=False) + "\n")

    judge_section = None
    judges: Dict[str, Any] = {}
    for role in needed_roles(cfg):
        llm = getattr(cfg, role)
        spec: Dict[str, Any] = {"llm": _llm_settings(llm)}
        if llm.serve.launcher == "vllm":  # started by the job, on its own node
            if judge_section is not None:
                raise SuiteError("one judge server per job: give the second judge an endpoint (llm@...=openai)")
            server = LocalServer("vllm", llm.model, host="0.0.0.0", port=cfg.launch.judge_port,
                                 tensor_parallel_size=llm.tensor_parallel_size,
                                 gpu_memory_utilization=llm.gpu_memory_utilization, dtype=llm.dtype,
                                 extra_args=llm.serve.extra_args)
            endpoint_file = job_dir / f"{role}_endpoint"
            judge_section = JudgeSection(command=" ".join(server.command()), port=cfg.launch.judge_port,
                                         endpoint_file=str(endpoint_file),
                                         startup_timeout_s=cfg.launch.judge_startup_timeout_s,
                                         description=f"{role}: vllm serve {llm.model}")
            spec["endpoint_file"] = str(endpoint_file)
            spec["llm"]["model"] = server.served_model
        judges[role] = spec
    reward_module = write_reward_module(job_dir / "reward_func.py", "genrm.remote_reward:build", {
        "reward": _plain(cfg.reward), "judges": judges, "cache_dir": str(job_dir / "judge_cache")})

    ckpt_dir = out / "checkpoint"
    tb_dir = job_dir / "tensorboard"
    args = ppo_args(model=cfg.model.path, algo=cfg.algo, engine=cfg.engine, dataset=str(data_path),
                    ckpt_dir=str(ckpt_dir), tensorboard_dir=str(tb_dir), seed=cfg.seed,
                    reward_module=str(reward_module))
    train_cmd = [cfg.launch.python, "-m", "openrlhf.cli.train_ppo_ray", *args]
    command = "ray job submit --address \"$RAY_ADDRESS\" -- " + shell_join(train_cmd)
    finish = None
    if finish_in_job and (tracker.run_id or cfg.dry_run):
        finish = shell_join([cfg.launch.python, "-m", "plumbing.launch.finish", "--tracking-uri", tracker.uri,
                             "--run-id", tracker.run_id or "<the stage's MLflow run id>", "--tensorboard-dir",
                             str(tb_dir), "--checkpoint", str(ckpt_dir)])
    slurm = cfg.cluster.slurm
    spec_ = JobSpec.from_cluster(
        slurm, name=f"genrm-{cfg.reward.name}", description=f"GenRM training ({cfg.reward.name} reward) with OpenRLHF",
        command=command, job_dir=str(job_dir), nodes=cfg.engine.num_nodes + (1 if judge_section else 0),
        gpus_per_node=cfg.engine.gpus_per_node, judge=judge_section,
        ray=RaySection(num_cpus=slurm.cpus_per_task, num_gpus=cfg.engine.gpus_per_node, port=cfg.launch.ray_port,
                       dashboard_port=cfg.launch.ray_dashboard_port),
        finish=finish)
    script = write(spec_, job_dir / "train.sbatch")
    (job_dir / "openrlhf_args.json").write_text(json.dumps(args, indent=1))
    return {"script": str(script), "reward_module": str(reward_module), "dataset": str(data_path),
            "openrlhf_args": args, "checkpoint": str(ckpt_dir), "examples": len(samples)}


def _plain(node: Any) -> Dict[str, Any]:
    from dataclasses import asdict

    return asdict(node)


def _llm_settings(llm: LLMConfig) -> Dict[str, Any]:
    """What a judge backend needs on the cluster: no key values (api_key_env is resolved there),
    no server to start (the job did), the cache set per host by the module."""
    d = _plain(llm)
    d["api_key"] = None
    d["serve"] = {"launcher": "none"}
    return d


def run_openrlhf(cfg: GenRMTrainConfig, samples: List[PairwiseSample], tracker: StageRun) -> Dict[str, Any]:
    from plumbing.launch.finish import bridge
    from plumbing.launch.slurm import submit

    prepared = prepare_openrlhf(cfg, samples, tracker, finish_in_job=cfg.cluster.kind == "slurm")
    script = Path(prepared["script"])
    if cfg.dry_run:
        print(f"[genrm_train] dry run: wrote {script}, {prepared['reward_module']}, {prepared['dataset']}\n")
        print(script.read_text())
        return {"dry_run": True, **prepared}
    if cfg.cluster.kind == "slurm":
        job_id = submit(script)
        tracker.set_tags({"slurm_job_id_submitted": job_id, "reward": cfg.reward.name,
                          "checkpoint_path_pending": prepared["checkpoint"]})
        tracker.detach()  # the job ends the run when training is done
        print(f"[genrm_train] submitted job {job_id}: {script}")
        return {"job_id": job_id, **prepared}
    rc = subprocess.run(["bash", str(script)]).returncode  # on a GPU node: run the job script here
    tb_dir = Path(cfg.output_dir) / "openrlhf" / "tensorboard"
    if tracker.run_id and tb_dir.exists():
        bridge(tracker.uri, tracker.run_id, tb_dir)
    if rc != 0:
        raise SuiteError(f"OpenRLHF training failed (exit {rc}); see {Path(cfg.output_dir) / 'openrlhf' / 'logs'}")
    tracker.set_tags({"checkpoint_path": prepared["checkpoint"], "reward": cfg.reward.name})
    return {"exit_code": rc, **prepared}


def run(cfg: GenRMTrainConfig, tracker: StageRun) -> Dict[str, Any]:
    samples = load_samples(cfg)
    if cfg.engine.name == "openrlhf":
        return run_openrlhf(cfg, samples, tracker)
    if cfg.dry_run:
        print(f"[genrm_train] dry run: {len(samples)} samples, local engine, {cfg.algo.estimator}, "
              f"reward={cfg.reward.name}, model={cfg.model.path}")
        return {"dry_run": True, "examples": len(samples)}
    return run_local(cfg, samples, tracker)


main = stage_main("genrm_train")

if __name__ == "__main__":
    main()
