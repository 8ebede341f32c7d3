"""The training progress a person reads: a bar and one short line per logging step.

transformers' ProgressCallback writes every logged value as a dict under the bar: with TRL's
GRPO and the GenRM reward's counters that is a 2,000-character line per step, in which the
reward is hard to find. Every value still reaches MLflow (``MlflowLogCallback``); the console
gets the few that say how training goes.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

from transformers.trainer_callback import ProgressCallback

SHOWN = ("loss", "reward", "reward_std", "kl", "entropy", "grad_norm", "learning_rate", "train_loss",
         "mean_token_accuracy")


def brief(logs: Mapping[str, Any], step: int, max_steps: int, keys: Sequence[str] = SHOWN) -> str:
    """``step 10/120  loss 0.77  reward 0.84 ...``: the ``keys`` present, in that order."""
    parts = [f"step {step}/{max_steps}"]
    for k in keys:
        v = logs.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            parts.append(f"{k} {v:.4g}")
    return "  ".join(parts)


class BriefProgress(ProgressCallback):
    """ProgressCallback whose log lines are :func:`brief`."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Dict[str, Any] | None = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(brief(logs, state.global_step, state.max_steps))


def use_brief_progress(trainer: Any) -> None:
    """Swap the trainer's default progress display for :class:`BriefProgress` (none with tqdm off)."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BriefProgress)
