"""The toy GenRM's supervised warm start (the costliest step of scripts/toy_check.sh): TRL SFT
steps on the toy judgments through the suite's judge prompt, side by side in one run for a
tiny model whose tokenizer saw only the built-in corpus (before issue 23) and one that also saw
the toy corpus (toy_world/assets/toy_corpus.txt, now the toy presets'): tokens per row and
seconds per step, same rows, same steps, same seed.

    python benchmarks/toy_warm_start.py [STEPS] [BATCH]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main(steps: int = 60, batch: int = 8) -> None:
    from genrm.records import PairwiseSample
    from genrm.training import warm_start_rows
    from plumbing.config.schema import TinyModelSpec
    from plumbing.engines.sft import WarmStartConfig, warm_start
    from plumbing.shipped import asset_path
    from plumbing.tiny_models import build_tiny_model

    recs = [json.loads(line) for line in Path(asset_path("toy_world/assets/toy_train.jsonl")).read_text().splitlines()]
    samples = [PairwiseSample(r["id"], r["conversations"], r["response_A"], r["response_B"], r["gt_label"],
                              r["gt_judgment"]) for r in recs]
    rows = warm_start_rows(samples, "toy_mixed", cue_share=0.7, seed=0)
    cfg = WarmStartConfig(steps=steps, batch_size=batch, targets="toy_mixed")
    corpus = str(asset_path("toy_world/assets/toy_corpus.txt"))
    with tempfile.TemporaryDirectory() as tmp:
        # untimed: TRL's import and torch's first steps, so neither side pays them in its time
        warm = build_tiny_model(Path(tmp) / "warm-up", TinyModelSpec())
        warm_start(str(warm), rows[:16], WarmStartConfig(steps=3, batch_size=batch, targets="toy_mixed"),
                   Path(tmp) / "out_warm-up", seed=0)
        for name, spec in (("built-in corpus", TinyModelSpec()), ("+ toy corpus", TinyModelSpec(corpus=[corpus]))):
            model = build_tiny_model(Path(tmp) / name.replace(" ", "_"), spec)
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(model)
            chats = [tok.apply_chat_template(r["prompt"] + [{"role": "assistant", "content": r["completion"]}],
                                             tokenize=False) for r in rows[:64]]
            n_tok = sum(len(tok(c).input_ids) for c in chats) / len(chats)
            t0 = time.perf_counter()
            warm_start(str(model), rows, cfg, Path(tmp) / f"out_{name.replace(' ', '_')}", seed=0)
            dt = time.perf_counter() - t0
            print(f"{name:<16} {n_tok:6.0f} tokens/row  {steps} steps of {batch}: {dt:6.1f} s ({dt / steps:.3f} s/step)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
