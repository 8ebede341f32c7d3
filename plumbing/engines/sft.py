"""A short supervised warm start (TRL SFT) before RL, so a tiny model starts RL already
writing the expected format (a verdict in ``\\boxed{}``, an answer sentence) instead of noise.

``WarmStartConfig.steps = 0`` (the default) skips it; a cluster run starts from real models
that already follow instructions and leaves it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from plumbing.config.schema import Problems, check_choice, check_positive


@dataclass
class WarmStartConfig:
    steps: int = 0  # optimizer steps of SFT before RL; 0 = none
    learning_rate: float = 1.0e-3
    warmup_steps: int = 20  # a tiny model from random init diverges at full rate from step 1
    batch_size: int = 8
    # What the templated completions are. golden: the record's golden judgment (GenRM) or the
    # prompt's reference answer (policy). toy_mixed, for the toy world (toy_world/):
    # a GenRM judgment from the true reason or, for a share `cue_share`, from the surface cue;
    # a policy answer that is right or, for a share `dodge_share`, a dodge, opened with the
    # cue for a share `cue_share` (of the right answers: `cue_share_right`, when set). So RL
    # starts from a model that can go either way.
    targets: str = "golden"
    cue_share: float = 0.5
    dodge_share: float = 0.5
    cue_share_right: Optional[float] = None

    def check(self) -> Problems:
        p: Problems = []
        check_positive(p, "steps", self.steps, allow_zero=True)
        check_positive(p, "learning_rate", self.learning_rate)
        check_positive(p, "batch_size", self.batch_size)
        check_positive(p, "warmup_steps", self.warmup_steps, allow_zero=True)
        check_choice(p, "targets", self.targets, ("golden", "toy_mixed"))
        for key in ("cue_share", "dodge_share", "cue_share_right"):
            if getattr(self, key) is not None and not 0 <= getattr(self, key) <= 1:
                p.append((key, "must be in [0, 1]"))
        return p


def warm_start(model_path: str, rows: List[Dict[str, Any]], cfg: WarmStartConfig, out: Path, seed: int = 0,
               tracker: Any = None) -> str:
    """SFT ``model_path`` on rows {prompt: [messages], completion: text}; return the new
    checkpoint (reused when it is already there: a rerun does not train twice)."""
    checkpoint = out / "warm_start" / "checkpoint"
    if (checkpoint / "config.json").exists():
        return str(checkpoint)
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from plumbing.engines.progress import use_brief_progress

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = Dataset.from_list([{"prompt": list(r["prompt"]),
                               "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows])
    args = SFTConfig(output_dir=str(out / "warm_start"), max_steps=cfg.steps, learning_rate=cfg.learning_rate,
                     per_device_train_batch_size=cfg.batch_size, use_cpu=not torch.cuda.is_available(),
                     logging_steps=max(1, cfg.steps // 10), save_strategy="no", report_to=[], seed=seed,
                     lr_scheduler_type="constant_with_warmup", warmup_steps=cfg.warmup_steps,
                     completion_only_loss=True)
    trainer = SFTTrainer(model=model_path, args=args, train_dataset=data, processing_class=tokenizer)
    use_brief_progress(trainer)
    result = trainer.train()
    trainer.save_model(str(checkpoint))
    tokenizer.save_pretrained(str(checkpoint))
    if tracker is not None:
        tracker.log_metrics({"warm_start/train_loss": float(result.training_loss)})
    print(f"[warm start] {cfg.steps} SFT steps on {len(rows)} rows, loss {result.training_loss:.3f} -> {checkpoint}")
    return str(checkpoint)
