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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from genrm.dynamics import SIGNALS, Dynamics, DynamicsSettings
from genrm.records import PairwiseSample
from genrm.rewards import RewardConfig
from genrm.rewards.base import Judge
from genrm.training import TRLReward, training_examples
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import (AlgoConfig, DataConfig, EngineConfig, LaunchConfig, LLMConfig, ModelConfig,
                                    Problems, StageConfig, check_produces)
from plumbing.data import data_sources, load_data
from plumbing.engines.sft import WarmStartConfig
from plumbing.engines.training import TrainingJob, engine_problems, train
from plumbing.errors import SuiteError
from plumbing.tracking import StageRun


@dataclass
class GenRMTrainConfig(StageConfig):
    stage: str = "genrm_train"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: Dict[str, DataConfig] = field(default_factory=dict)
    reward: RewardConfig = field(default_factory=RewardConfig)
    metarm: Optional[LLMConfig] = None  # the ralign reward's judge
    metajudge: Optional[LLMConfig] = None  # the hybrid reward's judge
    # a judge that only measures the training dynamics' rationale signal where the reward does
    # not (genrm.dynamics): a MetaRM (and MetaJudge, for checklist AP); never changes the reward
    monitor: Optional[LLMConfig] = None
    dynamics: DynamicsSettings = field(default_factory=DynamicsSettings)
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
        needs = self.reward.declared("needs")
        for role in needs:
            if getattr(self, role) is None:
                p.append((role, f"reward={self.reward.label} needs a {role}: choose one, e.g. llm@{role}=openai"))
        measured = self.reward.declared("measures")  # by the reward's own judge
        for signal in self.dynamics.require:
            if signal not in measured and self.monitor is None:
                p.append(("monitor", f"dynamics.require has {signal}, which reward={self.reward.label} does not "
                                     "measure: give the monitor a judge, e.g. llm@monitor=openai"))
        if self.dynamics.every > 1 and self.engine.name == "openrlhf":
            p.append(("dynamics.every", "engine=openrlhf gives its reward no step: thin the monitor with "
                                        "dynamics.fraction instead"))
        judges = {r: getattr(self, r) for r in needs}
        if self.monitor is not None:
            judges["monitor"] = self.monitor
        return p + engine_problems(self, judges)

    def plan(self):
        """The OpenRLHF resource plan of this run (engine=openrlhf)."""
        from plumbing.engines.openrlhf_plan import stage_plan

        judges = [getattr(self, r) for r in self.reward.declared("needs")]
        judges += [self.monitor] if self.monitor is not None else []
        return stage_plan(self.engine, self.algo, self.cluster, judges)


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


class GenRMJob(TrainingJob):
    """GenRM training as an engine runs it: judging prompts of pairwise samples, the chosen
    reward with the judges it declares."""

    def __init__(self, cfg: GenRMTrainConfig):
        super().__init__(cfg)
        self.name = f"genrm-{cfg.reward.label}"
        self.description = f"GenRM training ({cfg.reward.label} reward)"
        self.dynamics: Optional[Dynamics] = None  # the local engine's, once its reward is made
        self._items: Optional[List[PairwiseSample]] = None  # once loaded

    @property
    def model(self) -> Any:
        return self.cfg.model

    @property
    def judges(self) -> Dict[str, Any]:
        return {r: getattr(self.cfg, r) for r in self.cfg.reward.declared("needs") if getattr(self.cfg, r) is not None}

    @property
    def monitors(self) -> Dict[str, Any]:
        """The monitor, when the reward leaves a rationale signal to it (its checklist AP
        only on samples with checklists): a ralign run's monitor is not even started."""
        cfg = self.cfg
        if cfg.monitor is None:
            return {}
        left = [s for s in SIGNALS if s not in cfg.reward.declared("measures")]
        if self._items is not None and not any(s.gt_checklist for s in self._items):
            left = [s for s in left if s != "checklist_ap"]
        return {"monitor": cfg.monitor} if left else {}

    @property
    def tags(self) -> Dict[str, str]:
        return {"reward": self.cfg.reward.label}

    def load(self) -> List[PairwiseSample]:
        self._items = load_samples(self.cfg)
        return self._items

    def warm_start_rows(self, items: List[PairwiseSample]) -> List[Dict[str, Any]]:
        from genrm.training import warm_start_rows

        w = self.cfg.warm_start
        return warm_start_rows(items, w.targets, w.cue_share, self.cfg.seed)

    def local_examples(self, items: List[PairwiseSample]) -> List[Dict[str, Any]]:
        return training_examples(items, self.cfg.swap_balance, self.cfg.seed)

    def local_reward(self, judges: Dict[str, Any]) -> Any:
        opened = {role: Judge(b, s) for role, (b, s) in judges.items()}
        monitor = opened.pop("monitor", None)
        reward = self.cfg.reward.build(opened)
        self.dynamics = Dynamics(reward, self.cfg.dynamics, monitor)
        return TRLReward(reward, self.dynamics)

    def remote_rows(self, items: List[PairwiseSample]) -> List[Dict[str, Any]]:
        return [{"prompt": ex["prompt"], "label": ex["sample"]} for ex in self.local_examples(items)]

    def remote_reward(self, job_dir: Path, judges: Dict[str, Any]) -> Tuple[Path, Dict[str, Any]]:
        from dataclasses import asdict

        from plumbing.engines.openrlhf import write_reward_module

        judges = dict(judges)
        monitor = judges.pop("monitor", None)
        path = write_reward_module(job_dir / "reward_func.py", "genrm.remote_reward:build", {
            "reward": asdict(self.cfg.reward), "judges": judges, "cache_dir": str(job_dir / "judge_cache"),
            "max_failure_rate": self.cfg.max_failure_rate, "monitor": monitor,
            "dynamics": asdict(self.cfg.dynamics)})
        return path, {"reward_module": str(path)}

    def summary(self, items: Optional[List[PairwiseSample]]) -> Dict[str, Any]:
        if self.dynamics is None:
            return {}
        s = self.dynamics.summary()
        src = {k: v or "nowhere (no monitor)" for k, v in s["sources"].items()}
        print(f"[{self.cfg.stage}] training dynamics: rationale_correct from {src['rationale_correct']}, "
              f"checklist_ap from {src['checklist_ap']}; the monitor judged {s['monitor_judged']} "
              f"rollout(s), {s['monitor_failed']} failed")
        return {"dynamics": s}


def run(cfg: GenRMTrainConfig, tracker: StageRun) -> Dict[str, Any]:
    return train(GenRMJob(cfg), tracker)


main = stage_main("genrm_train")

if __name__ == "__main__":
    main()
