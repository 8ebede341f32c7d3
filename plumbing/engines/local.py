"""The local engine: TRL's GRPO / RLOO trainers on CPU or one GPU.

``train_local`` takes prompts (chat messages plus columns the reward reads), a TRL-style
reward function and the suite's :class:`~plumbing.config.schema.AlgoConfig`, translates the
settings, trains, logs every TRL log line to the stage's MLflow run (through the tracking
module, so the scrubber applies) and saves an HF checkpoint; with ``algo.save_steps`` the
Trainer's ``checkpoint-<step>`` folders are HF models too, recorded in ``checkpoints.json``
(plumbing.checkpoints) for a downstream evaluation over training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from plumbing import checkpoints
from plumbing.engines.training import Engine, TrainingJob

log = logging.getLogger(__name__)


def trl_settings(algo: Any, engine: Any, out: Path, seed: int) -> Dict[str, Any]:
    """The suite's algorithm settings in TRL's terms (GRPOConfig / RLOOConfig fields)."""
    import torch

    cpu = engine.device == "cpu" or (engine.device == "auto" and not torch.cuda.is_available())
    n = algo.n_samples_per_prompt
    per_step = algo.rollout_batch_size * n  # completions per optimizer step
    settings: Dict[str, Any] = dict(
        output_dir=str(out),
        use_cpu=cpu,
        bf16=not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        per_device_train_batch_size=min(per_step, max(algo.micro_batch_size, n)),
        num_generations=n,
        learning_rate=algo.actor_lr,
        warmup_steps=algo.lr_warmup_ratio,  # transformers 5: a float < 1 is a ratio of the steps
        beta=algo.kl_coef,
        epsilon=algo.eps_clip,
        max_completion_length=algo.max_new_tokens,
        temperature=algo.temperature if algo.temperature > 0 else 1.0,
        top_p=algo.top_p,
        num_train_epochs=algo.epochs,
        max_steps=algo.max_steps,
        logging_steps=algo.logging_steps,
        save_strategy="steps" if algo.save_steps > 0 else "no",
        report_to=[],  # the suite logs to MLflow itself (see MlflowLogCallback)
        seed=seed,
        remove_unused_columns=False,
    )
    if settings["per_device_train_batch_size"] % n:
        settings["per_device_train_batch_size"] = n * max(1, settings["per_device_train_batch_size"] // n)
    settings["gradient_accumulation_steps"] = max(1, per_step // settings["per_device_train_batch_size"])
    if algo.save_steps > 0:
        settings["save_steps"] = algo.save_steps
    if algo.estimator in ("grpo", "dr_grpo"):
        settings["loss_type"] = algo.estimator
    return settings


def _log_callback(tracker: Any) -> Any:
    from transformers import TrainerCallback

    from plumbing.engines import derive_ratios

    class MlflowLogCallback(TrainerCallback):
        """Every TRL log line becomes MLflow metrics of the stage's run, at the global step
        (with the ratio of each ``_num`` / ``_den`` pair, see derive_ratios)."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Dict[str, Any]] = None, **kw: Any) -> None:
            if logs:
                tracker.log_metrics(derive_ratios({k: v for k, v in logs.items() if isinstance(v, (int, float))}),
                                    step=state.global_step)

    return MlflowLogCallback()


def train_local(model_path: str, examples: List[Dict[str, Any]], reward_fn: Callable[..., List[float]], algo: Any,
                engine: Any, out: Path, tracker: Any, seed: int = 0) -> Path:
    """Train with TRL and return the directory of the saved HF checkpoint."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if algo.estimator == "rloo":
        from trl import RLOOConfig as Config
        from trl import RLOOTrainer as Trainer
    else:
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer
    from plumbing.engines.progress import use_brief_progress

    settings = trl_settings(algo, engine, out / "trl", seed)
    if algo.estimator == "rloo":
        settings.pop("loss_type", None)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path)
    trainer = Trainer(model=model, reward_funcs=[reward_fn], args=Config(**settings),
                      train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
                      callbacks=[_log_callback(tracker)])
    use_brief_progress(trainer)
    # A rerun after a crash or preemption resumes from the last step saved in ``out``.
    resume = any(Path(settings["output_dir"]).glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    checkpoint = out / "checkpoint"
    trainer.save_model(str(checkpoint))
    tokenizer.save_pretrained(str(checkpoint))
    record = checkpoint.parent / checkpoints.FILE
    record.unlink(missing_ok=True)  # a record on disk always belongs to this run
    if algo.save_steps > 0:  # Trainer's checkpoint-<step> folders hold the weights and the tokenizer
        checkpoints.record(checkpoint, trainer.state.global_step,
                           checkpoints.found(Path(settings["output_dir"]), checkpoints.TRL_DIR))
    return checkpoint


class LocalEngine(Engine):
    """TRL in this process: the job's reward called per batch, its judges opened here
    (cached, guarded: a judge failing too often stops training, it never trains on failure
    rewards), an optional supervised warm start first."""

    name = "local"
    estimators = ("grpo", "dr_grpo", "rloo")

    def run(self, job: TrainingJob, tracker: Any) -> Dict[str, Any]:
        import contextlib

        from plumbing.failures import enforce, guarded
        from plumbing.llm.registry import open_backend
        from plumbing.llm.types import SamplingParams
        from plumbing.models import resolve_model
        from plumbing.tags import CHECKPOINT

        cfg = job.cfg
        items = job.load()
        if cfg.dry_run:
            print(f"[{cfg.stage}] dry run: {len(items)} items, local engine, {cfg.algo.estimator}, "
                  f"{job.description}, model={job.model.path}")
            return {"dry_run": True, "examples": len(items), **job.summary(items)}
        out = Path(cfg.output_dir)
        model_path = resolve_model(job.model, cfg.output_dir)
        if cfg.warm_start.steps:
            from plumbing.engines.sft import warm_start

            model_path = warm_start(model_path, job.warm_start_rows(items), cfg.warm_start, out, cfg.seed, tracker)
        examples = job.local_examples(items)
        with contextlib.ExitStack() as stack:
            judges, monitors = {}, job.monitors
            for role, llm in {**job.judges, **monitors}.items():
                backend = stack.enter_context(open_backend(llm, out, role))
                if role not in monitors:
                    backend = guarded(backend, role, cfg.max_failure_rate)
                judges[role] = (backend, SamplingParams.from_config(llm.sampling))
            reward_fn = job.local_reward(judges)
            print(f"[{cfg.stage}] local engine: {cfg.algo.estimator} on {len(examples)} prompts, {job.description}")
            checkpoint = train_local(model_path, examples, reward_fn, cfg.algo, cfg.engine, out, tracker, cfg.seed)
            calls = {role: getattr(b, "inner", b).stats.as_dict() for role, (b, _) in judges.items()}
        # A short run may end before the guard has seen enough calls to judge: its judges'
        # failures are counted once more over the whole run, before the checkpoint is its result.
        enforce({r: c for r, c in calls.items() if r not in monitors}, cfg.max_failure_rate, [str(checkpoint)])
        record = checkpoint.parent / checkpoints.FILE
        kept = checkpoints.tags(record) if record.is_file() else {}
        if kept:
            tracker.log_artifact(record)
        tracker.set_tags({CHECKPOINT: str(checkpoint), **kept, **job.tags})
        return {"checkpoint": str(checkpoint), "examples": len(examples), "judge_calls": calls, **job.summary(items)}
