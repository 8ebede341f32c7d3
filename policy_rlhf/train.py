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
from typing import Any, Dict, List, Optional

from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import (AlgoConfig, DataConfig, EngineConfig, LaunchConfig, LLMConfig, ModelConfig,
                                    Problems, StageConfig, check_engine_algo, check_produces)
from plumbing.data import data_sources, load_data
from plumbing.engines.sft import WarmStartConfig
from plumbing.errors import SuiteError
from plumbing.models import resolve_model, resolve_run_ref
from plumbing.tags import CHECKPOINT, GENRM_RUN
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
        p += check_engine_algo(self.engine, self.algo)
        if self.pairwise.mode == "group" and self.algo.n_samples_per_prompt < 2:
            p.append(("algo.n_samples_per_prompt", "pairwise.mode=group compares a prompt's samples: needs >= 2"))
        if self.engine.name == "openrlhf":
            from plumbing.engines.openrlhf import judge_problems
            from plumbing.engines.openrlhf_plan import problems

            p += judge_problems("genrm", self.genrm)

            p += problems(self.plan(), self.engine, self.algo)
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


# ---------------------------------------------------------------------------- engine=local
def run_local(cfg: PolicyTrainConfig, genrm: LLMConfig, items: List[PromptItem], tracker: StageRun) -> Dict[str, Any]:
    from plumbing.engines.local import train_local
    from plumbing.failures import guarded
    from plumbing.llm.registry import open_backend
    from plumbing.llm.types import SamplingParams
    from policy_rlhf.training import TRLPairwiseReward, training_rows

    out = Path(cfg.output_dir)
    policy_path = resolve_model(cfg.policy, cfg.output_dir)
    if cfg.warm_start.steps:  # a tiny policy first learns to answer in the references' form
        from plumbing.engines.sft import warm_start
        from policy_rlhf.training import warm_start_rows

        w = cfg.warm_start
        rows = warm_start_rows(items, w.targets, w.dodge_share, w.cue_share, cfg.seed)
        policy_path = warm_start(policy_path, rows, cfg.warm_start, out, cfg.seed, tracker)
    with open_backend(genrm, out, "genrm") as opened:
        backend = guarded(opened, "genrm", cfg.max_failure_rate)  # stop, not train on failure rewards
        reward = PairwiseReward(cfg.pairwise, backend, SamplingParams.from_config(genrm.sampling))
        print(f"[policy_train] local engine: {cfg.algo.estimator} on {len(items)} prompts, "
              f"pairwise {cfg.pairwise.mode} reward, GenRM {genrm.model}")
        checkpoint = train_local(policy_path, training_rows(items), TRLPairwiseReward(reward, cfg.algo.max_new_tokens),
                                 cfg.algo, cfg.engine, out, tracker, cfg.seed)
        calls = getattr(backend, "inner", backend).stats.as_dict()
    tracker.set_tags({CHECKPOINT: str(checkpoint)})
    return {"checkpoint": str(checkpoint), "genrm_calls": calls}


# ---------------------------------------------------------------------------- engine=openrlhf
def prepare_openrlhf(cfg: PolicyTrainConfig, genrm: LLMConfig, items: Optional[List[PromptItem]],
                     tracker: StageRun) -> Dict[str, Any]:
    from plumbing.engines import openrlhf as orl
    from policy_rlhf.training import label_of

    out = Path(cfg.output_dir)
    job_dir = out / "openrlhf"
    data_path = job_dir / "prompts.jsonl"
    rows = None if items is None else [{"prompt": it.context, "label": label_of(it)} for it in items]
    lengths = orl.write_prompt_file(data_path, rows, cfg.policy.path, cfg.algo.max_prompt_len, cfg.dry_run)
    if not cfg.dry_run:
        tracker.log_params({f"data.{k}": v for k, v in lengths.items()})
    plan = cfg.plan()
    spec, section = orl.judge_settings("genrm", genrm, job_dir, cfg.launch, plan.judge_gpus, plan.judge_dp)
    settings = {"pairwise": asdict(cfg.pairwise), "judges": {"genrm": spec}, "cache_dir": str(job_dir / "judge_cache"),
                "max_failure_rate": cfg.max_failure_rate}
    # An agent executor in both modes: it sees each sample's truncation, a reward_func does not.
    module = orl.write_reward_module(job_dir / "agent_func.py", "policy_rlhf.openrlhf_agent:make_executor",
                                     {**settings, "n_samples_per_prompt": cfg.algo.n_samples_per_prompt,
                                      "group_wait_s": cfg.group_wait_s},
                                     exported="AgentExecutor",
                                     purpose=f"AgentExecutor for --train.agent_func_path ({cfg.pairwise.mode} mode)")
    module_kw: Dict[str, Any] = {"agent_module": str(module)}
    ckpt_dir, tb_dir = out / "checkpoint", job_dir / "tensorboard"
    args = orl.ppo_args(model=cfg.policy.path, algo=cfg.algo, engine=cfg.engine, plan=plan, dataset=str(data_path),
                        ckpt_dir=str(ckpt_dir), tensorboard_dir=str(tb_dir), seed=cfg.seed,
                        state_files=[str(data_path), str(module)],
                        state_known=lengths.get("checked", False), **module_kw)
    finish = orl.finish_command(cfg.launch, tracker, tb_dir, ckpt_dir) if orl.submits(cfg.cluster) else None
    script = orl.write_job(name="policy-ppo" if cfg.algo.estimator == "gae" else f"policy-{cfg.algo.estimator}",
                           description=f"policy training ({cfg.algo.estimator}) with a pairwise GenRM reward",
                           job_dir=job_dir, argv=args, plan=plan, slurm=cfg.cluster.slurm, launch=cfg.launch,
                           judge=section, finish=finish, hf_checkpoints=cfg.engine.hf_checkpoints)
    return {"script": str(script), "module": str(module), "dataset": str(data_path), "openrlhf_args": args,
            "checkpoint": str(ckpt_dir), "plan": plan, "prompt_lengths": lengths,
            **({"data": data_sources(cfg.data)} if items is None else {})}  # a dry run: where the job reads them


def run(cfg: PolicyTrainConfig, tracker: StageRun) -> Dict[str, Any]:
    out = Path(cfg.output_dir)
    genrm, genrm_run_id = resolve_genrm(cfg)
    tags = {"genrm_model": genrm.model, **({GENRM_RUN: genrm_run_id} if genrm_run_id else {})}
    tracker.set_tags(tags)
    if cfg.engine.name == "openrlhf" and cfg.dry_run and not all(d.path for d in cfg.data.values()):
        # a dry run reads no hub data (it works offline; the plan says where the data come from)
        items, report = None, {"data": data_sources(cfg.data)}
    else:
        prepared = prepare_prompts(cfg, out)
        items, report = prepared["items"], prepared["report"]
        tracker.log_params({f"prompts.{k}": v for k, v in report.items() if k != "path"})
    if cfg.engine.name == "openrlhf":
        from plumbing.engines.openrlhf import launch

        summary = launch(prepare_openrlhf(cfg, genrm, items, tracker), cfg, tracker, tags)
    elif cfg.dry_run:
        print(f"[policy_train] dry run: {report}")
        summary = {"dry_run": True}
    else:
        summary = run_local(cfg, genrm, items, tracker)
    summary.update(prompts=report, **tags)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if not cfg.dry_run:
        tracker.log_artifact(out / "summary.json")
    return summary


main = stage_main("policy_train")

if __name__ == "__main__":
    main()
