"""Tiny offline models: a random-init Qwen3 plus a byte-level BPE tokenizer trained locally.

Tests and the smoke experiment use these so nothing is fetched from a hub. The result is an
ordinary Hugging Face directory (loads in transformers, `transformers serve`, vLLM, TRL) and
is deterministic for a seed: the same spec gives byte-identical files.

    ralign tiny-model --out models/tiny --seed 0
    python -m plumbing.tiny_models --out models/tiny
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Iterable, Iterator, List, Optional

from plumbing.config.schema import TinyModelSpec

SPEC_FILE = "tiny_model.json"
# Bump when the builder's output changes, so directories built by an older builder are rebuilt.
BUILDER_VERSION = 3
PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# ChatML-style template; `enable_thinking=False` pre-fills an empty thinking block, as the
# Qwen3 family does. {% generation %} marks assistant tokens for assistant-only SFT losses.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] }}{{ '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif -%}"
    "{%- endif -%}"
)

_WORDS = (
    "the a an is are was be to of and or in on for with that this it as by not which response "
    "answer question user assistant better worse correct incorrect because reason rationale "
    "helpful accurate clear concise polite verdict judge compare both first second final "
    "A B boxed think step result number sum product equals true false code function return "
    "def print if else for while list value error test pass fail score checklist item match "
    "instruction follow format length style fact claim evidence conclusion therefore however"
).split()


def builtin_corpus(n_lines: int = 3000) -> Iterator[str]:
    """Deterministic text that covers chat markup, verdict syntax, digits and common words.

    Independent of the model seed: tiny models of different seeds share one tokenizer."""
    rng = random.Random(0)
    fixed = [
        f"{IM_START}system\nYou are a careful judge.{IM_END}",
        f"{IM_START}user\nWhich response is better?{IM_END}",
        f"{IM_START}assistant\n{THINK_OPEN}\nLet me compare.\n{THINK_CLOSE}\n\n"
        "Response A is correct. \\boxed{A}" + IM_END,
        "Final verdict: \\boxed{B}. The answer is \\boxed{42}.",
        "def add(a, b):\n    return a + b\n",
        "1 + 2 = 3; 12 * 7 = 84; 100 - 58 = 42; 3.14; -7; 1/2",
        "[Correct] [Incorrect] - R1@S2: 0.75 - R2@S0: 0 <RESULT_START> <RESULT_END>",
    ]
    yield from fixed * 20
    for _ in range(n_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 16))]
        nums = [str(rng.randint(0, 999)) for _ in range(rng.randint(0, 3))]
        line = " ".join(words + nums)
        yield line.capitalize() + rng.choice([".", "?", "!", ":", "\n"])


def _corpus(spec: TinyModelSpec) -> Iterator[str]:
    yield from builtin_corpus()
    for path in spec.corpus:
        with open(path, encoding="utf-8") as fh:
            yield from fh


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """A byte-level BPE (any text encodes) wrapped as a transformers fast tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    # Thinking tags are ordinary (non-special) added tokens: decoding with
    # skip_special_tokens=True keeps them, so raw outputs show the thinking block.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK_OPEN, THINK_CLOSE)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=1 << 20,
    )


def spec_hash(spec: TinyModelSpec) -> str:
    payload = dataclasses.asdict(spec)
    payload["builder_version"] = BUILDER_VERSION
    payload["corpus"] = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in spec.corpus]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def is_built(out_dir: str | Path, spec: TinyModelSpec) -> bool:
    marker = Path(out_dir) / SPEC_FILE
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("spec_hash") == spec_hash(spec)
    except (OSError, ValueError):
        return False


def is_foreign_model(out_dir: str | Path) -> bool:
    """A model directory the builder did not write (no spec marker): never overwrite it."""
    out = Path(out_dir).expanduser()
    return (out / "config.json").is_file() and not (out / SPEC_FILE).is_file()


def build_tiny_model(out_dir: str | Path, spec: Optional[TinyModelSpec] = None, force: bool = False) -> Path:
    """Build (or reuse, when the same spec is already there) a tiny Qwen3 model directory.
    A directory holding some other model (e.g. a checkpoint trained from a tiny one) is an
    error unless ``force``: building there would silently destroy it."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    spec = spec or TinyModelSpec()
    out = Path(out_dir)
    if not force and is_built(out, spec):
        return out
    if not force and is_foreign_model(out):
        raise FileExistsError(f"{out} holds a model the tiny builder did not write; not overwriting it "
                              "(use another directory, or force)")
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(_corpus(spec), spec.vocab_size)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = Qwen3ForCausalLM(config)
    # Like released chat models: sampling on by default; a request with temperature 0 is greedy.
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
        do_sample=True, temperature=1.0, top_p=1.0,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / SPEC_FILE).write_text(
        json.dumps({"spec": dataclasses.asdict(spec), "spec_hash": spec_hash(spec)}, indent=2)
    )
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="ralign tiny-model", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=TinyModelSpec.vocab_size)
    parser.add_argument("--hidden-size", type=int, default=TinyModelSpec.hidden_size)
    parser.add_argument("--layers", type=int, default=TinyModelSpec.num_hidden_layers)
    parser.add_argument("--corpus", action="append", default=[], help="extra tokenizer text file")
    parser.add_argument("--force", action="store_true", help="rebuild even if the same spec exists")
    args = parser.parse_args(argv)
    spec = TinyModelSpec(
        seed=args.seed, vocab_size=args.vocab_size, hidden_size=args.hidden_size,
        intermediate_size=2 * args.hidden_size, num_hidden_layers=args.layers, corpus=args.corpus,
    )
    from plumbing.config.validate import check_tree

    problems = check_tree(spec)
    if problems:
        parser.error("; ".join(f"{k}: {m}" for k, m in problems))
    path = build_tiny_model(args.out, spec, force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
