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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from genrm.records import PairwiseSample
from genrm.rewards import RewardConfig
from genrm.rewards.base import Judge
from genrm.training import TRLReward, training_examples
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import (AlgoConfig, DataConfig, EngineConfig, LaunchConfig, LLMConfig, ModelConfig,
                                    Problems, StageConfig, check_engine_algo, check_produces)
from plumbing.data import data_sources, load_data
from plumbing.engines.sft import WarmStartConfig
from plumbing.errors import SuiteError
from plumbing.tags import CHECKPOINT
from plumbing.tracking import StageRun


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
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)  # SFT before RL (local engine)

    def check(self) -> Problems:
        p = super().check()
        if not self.data:
            p.append(("data", "give the training data, e.g. data=ralign_rl"))
        p += check_produces(self.data, "pairwise")
        p += check_engine_algo(self.engine, self.algo)
        needs = self.reward.declared("needs")
        for role in needs:
            if getattr(self, role) is None:
                p.append((role, f"reward={self.reward.label} needs a {role}: choose one, e.g. llm@{role}=openai"))
        if self.engine.name == "openrlhf":
            from plumbing.engines.openrlhf import judge_problems

            for role in needs:
                p += judge_problems(role, getattr(self, role))
            p += self.plan_problems()
        return p

    def plan(self):
        """The OpenRLHF resource plan of this run (engine=openrlhf)."""
        from plumbing.engines.openrlhf_plan import stage_plan

        judges = [getattr(self, r) for r in self.reward.declared("needs")]
        return stage_plan(self.engine, self.algo, self.cluster, judges)

    def plan_problems(self) -> Problems:
        from plumbing.engines.openrlhf_plan import problems

        return problems(self.plan(), self.engine, self.algo)


# Its dry run writes the engine's job script and command lines (a pipeline dry run shows them).
RENDERS_JOBS = True
SCHEMA = GenRMTrainConfig


def load_samples(cfg: GenRMTrainConfig) -> List[PairwiseSample]:
    samples: List[PairwiseSample] = []
    for d in cfg.data.values():
        items, _ = load_data(d)
        samples += items
    samples = [s for s in samples if s.gt_label]  # a reward needs the golden verdict
    if cfg.limit:
        samples = samples[: cfg.limit]
    for needed in cfg.reward.declared("needs_fields"):  # what the reward declares it reads
        if not any(getattr(s, needed) for s in samples):
            raise SuiteError(f"reward={cfg.reward.label} reads {needed} of its samples; these data sets have none "
                             f"(data: {', '.join(data_sources(cfg.data))}; rationalerm_train has gt_checklist)")
    if not samples:
        raise SuiteError("no training samples with a golden label")
    return samples


def needed_roles(cfg: GenRMTrainConfig) -> List[str]:
    return [r for r in cfg.reward.declared("needs") if getattr(cfg, r) is not None]


# ---------------------------------------------------------------------------- engine=local
def run_local(cfg: GenRMTrainConfig, samples: List[PairwiseSample], tracker: StageRun) -> Dict[str, Any]:
    from plumbing.engines.local import train_local
    from plumbing.failures import guarded
    from plumbing.llm.registry import open_backend
    from plumbing.llm.types import SamplingParams
    from plumbing.models import resolve_model

    out = Path(cfg.output_dir)
    model_path = resolve_model(cfg.model, cfg.output_dir)
    if cfg.warm_start.steps:
        from genrm.training import warm_start_rows
        from plumbing.engines.sft import warm_start

        rows = warm_start_rows(samples, cfg.warm_start.targets, cfg.warm_start.cue_share, cfg.seed)
        model_path = warm_start(model_path, rows, cfg.warm_start, out, cfg.seed, tracker)
    examples = training_examples(samples, cfg.swap_balance, cfg.seed)
    import contextlib

    with contextlib.ExitStack() as stack:
        judges = {}
        for role in needed_roles(cfg):
            llm = getattr(cfg, role)
            backend = guarded(stack.enter_context(open_backend(llm, out, role)), role, cfg.max_failure_rate)
            judges[role] = Judge(backend, SamplingParams.from_config(llm.sampling))
        reward = cfg.reward.build(judges)
        print(f"[genrm_train] local engine: {cfg.algo.estimator} on {len(examples)} prompts, reward={cfg.reward.label}")
        checkpoint = train_local(model_path, examples, TRLReward(reward), cfg.algo, cfg.engine, out, tracker, cfg.seed)
        calls = {role: getattr(j.backend, "inner", j.backend).stats.as_dict() for role, j in judges.items()}
    tracker.set_tags({CHECKPOINT: str(checkpoint), "reward": cfg.reward.label})
    summary = {"checkpoint": str(checkpoint), "examples": len(examples), "judge_calls": calls}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    tracker.log_artifact(out / "summary.json")
    return summary


# ---------------------------------------------------------------------------- engine=openrlhf
def prepare_openrlhf(cfg: GenRMTrainConfig, samples: Optional[List[PairwiseSample]],
                     tracker: StageRun) -> Dict[str, Any]:
    """Write the data set, the reward module and the job script; return what was written.
    A submitted job ends the MLflow run itself (its finishing step); a job run here does not.
    ``samples=None`` (a dry run): no data is read, the plan says where it would come from."""
    from dataclasses import asdict

    from plumbing.engines import openrlhf as orl

    out = Path(cfg.output_dir)
    job_dir = out / "openrlhf"
    data_path = job_dir / "train.jsonl"
    rows = None if samples is None else [{"prompt": ex["prompt"], "label": ex["sample"]}
                                         for ex in training_examples(samples, cfg.swap_balance, cfg.seed)]
    lengths = orl.write_prompt_file(data_path, rows, cfg.model.path, cfg.algo.max_prompt_len, cfg.dry_run)
    if not cfg.dry_run:
        tracker.log_params({f"data.{k}": v for k, v in lengths.items()})
    judges: Dict[str, Any] = {}
    sections = []
    plan = cfg.plan()
    for role in needed_roles(cfg):
        judges[role], section = orl.judge_settings(role, getattr(cfg, role), job_dir, cfg.launch, plan.judge_gpus,
                                                     plan.judge_dp)
        sections += [section] if section else []
    if len(sections) > 1:
        raise SuiteError("one judge server per job: give the other judge an endpoint (llm@...=openai)")
    reward_module = orl.write_reward_module(job_dir / "reward_func.py", "genrm.remote_reward:build", {
        "reward": asdict(cfg.reward), "judges": judges, "cache_dir": str(job_dir / "judge_cache"),
        "max_failure_rate": cfg.max_failure_rate})
    ckpt_dir, tb_dir = out / "checkpoint", job_dir / "tensorboard"
    args = orl.ppo_args(model=cfg.model.path, algo=cfg.algo, engine=cfg.engine, plan=plan, dataset=str(data_path),
                        ckpt_dir=str(ckpt_dir), tensorboard_dir=str(tb_dir), seed=cfg.seed,
                        reward_module=str(reward_module),
                        state_files=[str(data_path), str(reward_module)],
                        state_known=lengths.get("checked", False))
    finish = orl.finish_command(cfg.launch, tracker, tb_dir, ckpt_dir) if orl.submits(cfg.cluster) else None
    script = orl.write_job(name=f"genrm-{cfg.reward.label}", job_dir=job_dir, argv=args, plan=plan,
                           description=f"GenRM training ({cfg.reward.label} reward) with OpenRLHF",
                           slurm=cfg.cluster.slurm, launch=cfg.launch, judge=sections[0] if sections else None,
                           finish=finish, hf_checkpoints=cfg.engine.hf_checkpoints)
    return {"script": str(script), "reward_module": str(reward_module), "dataset": str(data_path),
            "openrlhf_args": args, "checkpoint": str(ckpt_dir), "plan": plan, "prompt_lengths": lengths,
            **({"examples": len(samples)} if samples is not None else {"data": data_sources(cfg.data)})}


def run(cfg: GenRMTrainConfig, tracker: StageRun) -> Dict[str, Any]:
    if cfg.engine.name == "openrlhf":
        from plumbing.engines.openrlhf import launch

        # A dry run reads no hub data (it works offline; the plan says where the data come from)
        samples = None if cfg.dry_run and not all(d.path for d in cfg.data.values()) else load_samples(cfg)
        return launch(prepare_openrlhf(cfg, samples, tracker), cfg, tracker, {"reward": cfg.reward.label})
    samples = load_samples(cfg)
    if cfg.dry_run:
        print(f"[genrm_train] dry run: {len(samples)} samples, local engine, {cfg.algo.estimator}, "
              f"reward={cfg.reward.label}, model={cfg.model.path}")
        return {"dry_run": True, "examples": len(samples)}
    return run_local(cfg, samples, tracker)


main = stage_main("genrm_train")

if __name__ == "__main__":
    main()
