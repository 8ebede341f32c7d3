"""policy_train: optimise a policy with a pairwise GenRM as the reward.

    python -m policy_rlhf.train experiment=smoke_policy                            # local engine, CPU
    python -m policy_rlhf.train experiment=policy_ppo_qwen3_8b_ralign genrm.model=runs:/<genrm_train run> dry_run=true

The GenRM is ``genrm.model``: a checkpoint path or hub id, ``runs:/<run id>`` of a
genrm_train run (its checkpoint; the run is linked with tag ``genrm_run_id``), or a served
model (``llm@genrm=openai genrm.base_url=...``). ``pairwise.mode=reference`` compares each
response with the prompt's reference response (from the data, or generated once by
``llm@reference=...`` and stored with the prepared data); ``pairwise.mode=group`` compares
the n samples of a prompt with each other.
``engine=local``: TRL GRPO/RLOO with the same reward code; ``engine=openrlhf``: PPO with a
critic (``algo=ppo``) or a group estimator, the GenRM's ``vllm serve`` on its own node, the
reward module (or, in group mode, an agent executor), Ray across nodes, DeepSpeed, vLLM
rollout engines; TensorBoard metrics and the reward diagnostics (win rate, judge failures,
swap consistency) go to the stage's MLflow run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import (AlgoConfig, DataConfig, EngineConfig, LaunchConfig, LLMConfig, ModelConfig,
                                    Problems, StageConfig, check_produces)
from plumbing.data import data_sources, load_data
from plumbing.engines.sft import WarmStartConfig
from plumbing.engines.training import TrainingJob, engine_problems, train
from plumbing.errors import SuiteError
from plumbing.models import resolve_run_ref
from plumbing.tags import GENRM_RUN
from plumbing.tracking import StageRun, tracking_uri
from policy_rlhf.prompts import PromptItem, mix
from policy_rlhf.reward import PairwiseReward, PairwiseRewardConfig


@dataclass
class PolicyTrainConfig(StageConfig):
    stage: str = "policy_train"
    policy: ModelConfig = field(default_factory=ModelConfig)
    genrm: LLMConfig = field(default_factory=LLMConfig, metadata={"give": {
        "model": "the GenRM: a checkpoint path, a hub id, or runs:/<genrm_train run id>"}})
    genrm_tracking_uri: Optional[str] = None  # where runs:/ ids resolve (default: tracking.uri)
    reference: Optional[LLMConfig] = None  # writes references for prompts without one
    regenerate_references: bool = False
    data: Dict[str, DataConfig] = field(default_factory=dict)
    num_prompts: Optional[int] = None  # draw this many prompts by the data sets' weights (default: all)
    pairwise: PairwiseRewardConfig = field(default_factory=PairwiseRewardConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    group_wait_s: float = 120.0  # openrlhf group mode: longest wait for a prompt's siblings
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)  # SFT before RL (local engine)

    def check(self) -> Problems:
        p = super().check()
        if not self.data:
            p.append(("data", "give prompt data, e.g. data=smoke_prompts"))
        p += check_produces(self.data, "policy_prompts")
        if self.pairwise.mode == "group" and self.algo.n_samples_per_prompt < 2:
            p.append(("algo.n_samples_per_prompt", "pairwise.mode=group compares a prompt's samples: needs >= 2"))
        p += engine_problems(self, {"genrm": self.genrm})
        if self.num_prompts is not None and self.num_prompts < 1:
            p.append(("num_prompts", "must be >= 1"))
        return p

    def plan(self):
        """The OpenRLHF resource plan of this run (engine=openrlhf): the GenRM is its judge."""
        from plumbing.engines.openrlhf_plan import stage_plan

        return stage_plan(self.engine, self.algo, self.cluster, [self.genrm])


# Its dry run writes the engine's job script and command lines (a pipeline dry run shows them).
RENDERS_JOBS = True
SCHEMA = PolicyTrainConfig


def prepare_prompts(cfg: PolicyTrainConfig, out: Path) -> Dict[str, Any]:
    """Load, mix, complete with references, and store the prompts; return them with a report."""
    sets: Dict[str, List[PromptItem]] = {}
    for name, d in cfg.data.items():
        sets[name], _ = load_data(d)
    items = mix(sets, {n: d.weight for n, d in cfg.data.items()}, cfg.num_prompts, cfg.seed)
    report: Dict[str, Any] = {"prompts": len(items), "by_domain": {}}
    if cfg.pairwise.mode == "reference":
        if cfg.reference is not None and not cfg.dry_run:
            from plumbing.llm.registry import open_backend
            from plumbing.llm.types import SamplingParams
            from policy_rlhf.references import fill_references

            with open_backend(cfg.reference, out, "reference") as backend:
                report["references"] = fill_references(items, backend, SamplingParams.from_config(cfg.reference.sampling),
                                                       cfg.regenerate_references)
        missing = sum(1 for it in items if not it.reference)
        if missing and not cfg.dry_run:
            items = [it for it in items if it.reference]
            report["dropped_without_reference"] = missing
            if not items:
                raise SuiteError("reference mode: no prompt has a reference response; give data with references, "
                                 "or a reference model (llm@reference=...) to write them")
    for it in items:
        report["by_domain"][it.domain] = report["by_domain"].get(it.domain, 0) + 1
    path = out / "data" / "prompts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for it in items:
            fh.write(json.dumps(it.as_row(), ensure_ascii=False) + "\n")
    report["prompts"], report["path"] = len(items), str(path)
    return {"items": items, "report": report}


def resolve_genrm(cfg: PolicyTrainConfig) -> tuple:
    """(the GenRM's LLMConfig with a loadable model, the genrm_train run id it came from)."""
    uri = cfg.genrm_tracking_uri or tracking_uri(cfg.tracking.uri, cfg.output_dir)
    model, run_id = resolve_run_ref(cfg.genrm.model, uri)
    return replace(cfg.genrm, model=model), run_id


class PolicyJob(TrainingJob):
    """Policy training as an engine runs it: prompts with their references, the pairwise
    GenRM reward (an agent executor on OpenRLHF, which sees each sample's truncation)."""

    def __init__(self, cfg: PolicyTrainConfig, tracker: StageRun):
        super().__init__(cfg)
        self.tracker = tracker
        self.genrm, genrm_run_id = resolve_genrm(cfg)
        self._tags = {"genrm_model": self.genrm.model, **({GENRM_RUN: genrm_run_id} if genrm_run_id else {})}
        self.report: Dict[str, Any] = {"data": data_sources(cfg.data)}
        e = cfg.algo.estimator
        self.name = "policy-ppo" if e == "gae" else f"policy-{e}"
        self.description = f"policy training ({e}) with a pairwise GenRM reward ({cfg.pairwise.mode} mode)"

    @property
    def model(self) -> Any:
        return self.cfg.policy

    @property
    def judges(self) -> Dict[str, Any]:
        return {"genrm": self.genrm}

    @property
    def tags(self) -> Dict[str, str]:
        return self._tags

    def load(self) -> List[PromptItem]:
        prepared = prepare_prompts(self.cfg, Path(self.cfg.output_dir))
        self.report = prepared["report"]
        self.tracker.log_params({f"prompts.{k}": v for k, v in self.report.items() if k != "path"})
        return prepared["items"]

    def warm_start_rows(self, items: List[PromptItem]) -> List[Dict[str, Any]]:
        from policy_rlhf.training import warm_start_rows  # a tiny policy first learns the references' form

        w = self.cfg.warm_start
        return warm_start_rows(items, w.targets, w.dodge_share, w.cue_share, self.cfg.seed, w.cue_share_right)

    def local_examples(self, items: List[PromptItem]) -> List[Dict[str, Any]]:
        from policy_rlhf.training import training_rows

        return training_rows(items)

    def local_reward(self, judges: Dict[str, Any]) -> Any:
        from policy_rlhf.training import TRLPairwiseReward

        backend, sampling = judges["genrm"]
        return TRLPairwiseReward(PairwiseReward(self.cfg.pairwise, backend, sampling), self.cfg.algo.max_new_tokens)

    def remote_rows(self, items: List[PromptItem]) -> List[Dict[str, Any]]:
        from policy_rlhf.training import label_of

        return [{"prompt": it.context, "label": label_of(it)} for it in items]

    def remote_reward(self, job_dir: Path, judges: Dict[str, Any]) -> Tuple[Path, Dict[str, Any]]:
        from plumbing.engines.openrlhf import write_reward_module

        cfg = self.cfg
        settings = {"pairwise": asdict(cfg.pairwise), "judges": judges, "cache_dir": str(job_dir / "judge_cache"),
                    "max_failure_rate": cfg.max_failure_rate,
                    "n_samples_per_prompt": cfg.algo.n_samples_per_prompt, "group_wait_s": cfg.group_wait_s}
        # An agent executor in both modes: it sees each sample's truncation, a reward_func does not.
        path = write_reward_module(job_dir / "agent_func.py", "policy_rlhf.openrlhf_agent:make_executor", settings,
                                   exported="AgentExecutor",
                                   purpose=f"AgentExecutor for --train.agent_func_path ({cfg.pairwise.mode} mode)")
        return path, {"agent_module": str(path)}

    def summary(self, items: Optional[List[PromptItem]]) -> Dict[str, Any]:
        return {"prompts": self.report, **self._tags}


def run(cfg: PolicyTrainConfig, tracker: StageRun) -> Dict[str, Any]:
    job = PolicyJob(cfg, tracker)
    tracker.set_tags(job.tags)
    return train(job, tracker)


main = stage_main("policy_train")

if __name__ == "__main__":
    main()
