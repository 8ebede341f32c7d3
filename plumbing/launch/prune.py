"""Keep only the newest N intermediate Hugging Face checkpoints of a running OpenRLHF job.

OpenRLHF rotates its DeepSpeed states (``--ckpt.max_num``) but never its ``--ckpt.save_hf``
copies (``<ckpt.path>/global_step<N>_hf``, a full model each); the job script runs this
beside training and once after it::

    python -m plumbing.launch.prune DIR --keep 2 [--every 60]

Only complete copies count (a folder being written is left alone); order is by step number.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path
from typing import List

HF_DIR = re.compile(r"^global_step(\d+)_hf$")


def complete(folder: Path) -> bool:
    """A copy OpenRLHF finished writing: its tokenizer is saved after the weights."""
    return (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()


def prune(root: Path, keep: int) -> List[Path]:
    """Keep the ``keep`` (at least 1) highest-step complete ``global_step<N>_hf`` folders;
    remove older complete ones and partial ones older than the newest complete one (a save
    cut short). A folder still being written is never removed nor counted. Return those removed."""
    found = sorted(((int(m.group(1)), p) for p in (root.iterdir() if root.is_dir() else [])
                    if p.is_dir() and (m := HF_DIR.match(p.name))), reverse=True)
    done = [(step, p) for step, p in found if complete(p)]
    newest_done = done[0][0] if done else None
    removed = [p for _, p in done[max(keep, 1):]]
    removed += [p for step, p in found if not complete(p) and newest_done is not None and step < newest_done]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--keep", type=int, required=True)
    ap.add_argument("--every", type=float, default=0, help="seconds between passes (0: one pass)")
    args = ap.parse_args(argv)
    while True:
        for p in prune(args.root, args.keep):
            print(f"[prune] removed {p}", flush=True)
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    raise SystemExit(main())
