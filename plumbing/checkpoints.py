"""The models a training run keeps over training, each with the step it was saved at.

A training stage writes ``checkpoints.json`` beside its final checkpoint (``<output_dir>/
checkpoints.json`` for ``<output_dir>/checkpoint``) and tags its MLflow run with the file
(``checkpoints_file``), so a later stage given ``runs:/<run id>`` or the final checkpoint's
path finds every kept model and its step: downstream_eval's ``checkpoints=all`` evaluates
them in step order, the final model last (the R-Align paper's Figure 2).

An intermediate copy saved at the final step is the final model and is not listed twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from plumbing.errors import SuiteError
from plumbing.tags import CHECKPOINTS

FILE = "checkpoints.json"
TRL_DIR = re.compile(r"^checkpoint-(\d+)$")  # transformers.Trainer's folders (weights + tokenizer)
OPENRLHF_HF_DIR = re.compile(r"^global_step(\d+)_hf$")  # OpenRLHF 0.11.2 --ckpt.save_hf, under --ckpt.path


@dataclass(frozen=True)
class Kept:
    step: int
    path: str
    final: bool = False


def is_hf_model(folder: Path) -> bool:
    """A complete Hugging Face copy: config, weights and tokenizer (written last by both engines)."""
    weights = any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))
    return (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file() and weights


def found(root: Path, pattern: "re.Pattern[str]") -> List[Tuple[int, Path]]:
    """(step, folder) of the complete HF copies under ``root`` whose names match ``pattern``."""
    if not root.is_dir():
        return []
    hits = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := pattern.match(p.name))]
    return sorted((s, p) for s, p in hits if is_hf_model(p))


def record(final: Path, final_step: int, kept: Iterable[Tuple[int, Path]]) -> Path:
    """Write ``checkpoints.json`` beside ``final``: the kept copies before ``final_step`` and
    the final model at ``final_step``; return its path."""
    final = Path(final).resolve()
    rows = [Kept(s, str(Path(p).resolve())) for s, p in sorted(kept) if s < final_step]
    rows.append(Kept(int(final_step), str(final), final=True))
    path = final.parent / FILE
    path.write_text(json.dumps({"checkpoints": [asdict(k) for k in rows]}, indent=1) + "\n")
    return path


def tags(path: Path) -> dict:
    """The run's tags that point at the record (and list its steps, for a reader of the UI)."""
    steps = [str(k.step) for k in read(path)]
    return {CHECKPOINTS: str(path), "checkpoint_steps": ",".join(steps)[:500]}


def read(path: Path) -> List[Kept]:
    rows = json.loads(Path(path).read_text())["checkpoints"]
    return [Kept(int(r["step"]), str(r["path"]), bool(r.get("final"))) for r in rows]


def resolve(ref: str, tracking_uri: str) -> Tuple[List[Kept], Optional[str]]:
    """(the kept models in step order, the final one last; the training run id or None) of
    ``runs:/<run id>`` or of a final checkpoint's path. A SuiteError (exit 2) says why when the
    reference is not a training run that kept checkpoints, or one of them is gone."""
    from plumbing.models import RUN_PREFIX, resolve_run_ref

    hint = "train with algo.save_steps=k (and engine.hf_checkpoints=n on engine=openrlhf) to keep them"
    run_id = None
    if ref.startswith(RUN_PREFIX):
        final, run_id = resolve_run_ref(ref, tracking_uri)
        from mlflow.tracking import MlflowClient

        tagged = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags.get(CHECKPOINTS)
        if not tagged:
            raise SuiteError(f"{ref}: the training run recorded no kept checkpoints (no {CHECKPOINTS} tag); {hint}")
        path = Path(tagged)
    else:
        final = ref
        path = Path(ref).expanduser().resolve().parent / FILE
        if not path.is_file():
            raise SuiteError(f"{ref} is not the final checkpoint of a training run that kept checkpoints "
                             f"(no {path}); give runs:/<policy_train run id> or {hint}")
    if not path.is_file():
        raise SuiteError(f"{ref}: its record of kept checkpoints {path} is gone")
    kept = read(path)
    if Path(kept[-1].path) != Path(final).expanduser().resolve():
        raise SuiteError(f"{ref}: {path} records another run's final model ({kept[-1].path}, not {final})")
    gone = [k.path for k in kept if not Path(k.path).is_dir()]
    if gone:
        raise SuiteError(f"{ref}: kept checkpoints listed in {path} are gone: {', '.join(gone)}")
    return kept, run_id


def last_logged_step(tensorboard_dir: Optional[Path]) -> int:
    """The last training step of an OpenRLHF job's TensorBoard scalars (``train/*``; 0 if none)."""
    if tensorboard_dir is None or not Path(tensorboard_dir).is_dir():
        return 0
    from plumbing.launch.follow import ScalarBridge

    scalars = ScalarBridge("", "", Path(tensorboard_dir)).scalars()  # reads the event files only
    return max((step for tag, pts in scalars.items() if tag.startswith("train/") for _, step, _ in pts), default=0)


def record_openrlhf(final: Path, hf_root: Path, tensorboard_dir: Optional[Path]) -> Path:
    """The record of a finished OpenRLHF job that saved HF copies (``--ckpt.save_hf``): the
    ``global_step<N>_hf`` folders left under ``hf_root`` (``--ckpt.path``) once its pruner ran,
    and the final model at its last logged training step (at least the last copy's: with
    ``logging_steps`` > 1 the job may have trained up to ``logging_steps`` - 1 steps more)."""
    kept = found(Path(hf_root), OPENRLHF_HF_DIR)
    final_step = max([last_logged_step(tensorboard_dir), *(s for s, _ in kept)], default=0)
    return record(final, final_step, [(s, p) for s, p in kept if s < final_step])
