"""Keep only the newest N intermediate Hugging Face checkpoints of a running OpenRLHF job.

OpenRLHF rotates its DeepSpeed states (``--ckpt.max_num``) but never its ``--ckpt.save_hf``
copies (``<ckpt.path>/global_step<N>_hf``, a full model each); the job script runs this
beside training and once after it::

    python -m plumbing.launch.prune DIR --keep 2 [--every 60]

The newest folder (the one being written) is always kept; order is by step number.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path
from typing import List

HF_DIR = re.compile(r"^global_step(\d+)_hf$")


def prune(root: Path, keep: int) -> List[Path]:
    """Remove all but the ``keep`` (at least 1) highest-step ``global_step<N>_hf`` folders; return them."""
    found = sorted(((int(m.group(1)), p) for p in (root.iterdir() if root.is_dir() else [])
                    if p.is_dir() and (m := HF_DIR.match(p.name))), reverse=True)
    removed = [p for _, p in found[max(keep, 1):]]
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
