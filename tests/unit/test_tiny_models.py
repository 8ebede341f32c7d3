"""Tiny offline models: deterministic, loadable, with a working chat template."""

from __future__ import annotations

import hashlib
from pathlib import Path

from plumbing.config.schema import TinyModelSpec
from plumbing.tiny_models import build_tiny_model, is_built


def _digest(folder: Path) -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_other_weights(tiny_model, tmp_path):
    again = build_tiny_model(tmp_path / "again")
    assert _digest(again) == _digest(tiny_model)
    other = build_tiny_model(tmp_path / "other", TinyModelSpec(seed=1))
    assert _digest(other)["model.safetensors"] != _digest(tiny_model)["model.safetensors"]
    assert _digest(other)["tokenizer.json"] == _digest(tiny_model)["tokenizer.json"]


def test_an_existing_build_is_reused_and_a_changed_spec_rebuilds(tmp_path):
    out = build_tiny_model(tmp_path / "m")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    build_tiny_model(out)
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    spec = TinyModelSpec(hidden_size=96, intermediate_size=192)
    assert not is_built(out, spec)
    build_tiny_model(out, spec)
    assert is_built(out, spec)


def test_a_trained_checkpoint_in_the_models_place_is_used_not_overwritten(tmp_path):
    import pytest

    from plumbing.config.schema import ModelConfig
    from plumbing.models import resolve_model

    out = build_tiny_model(tmp_path / "m")
    (out / "tiny_model.json").unlink()  # what a trainer's save_pretrained leaves: a model, no builder marker
    weights = (out / "model.safetensors").read_bytes()
    assert resolve_model(ModelConfig(path=str(out), tiny=TinyModelSpec(seed=7)), str(tmp_path)) == str(out.resolve())
    with pytest.raises(FileExistsError, match="did not write"):
        build_tiny_model(out, TinyModelSpec(seed=7))
    assert (out / "model.safetensors").read_bytes() == weights


def test_loads_in_transformers_and_chat_template_keeps_thinking_tags(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config.model_type == "qwen3" and model.config.head_dim >= 32
    msgs = [{"role": "system", "content": "Judge."}, {"role": "user", "content": "A or B?"},
            {"role": "assistant", "content": "<think>\nB is wrong\n</think>\n\n\\boxed{A}"}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text.count("<|im_start|>") == 3 and text.endswith("<|im_end|>\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    decoded = tok.decode(ids, skip_special_tokens=True)
    assert "<think>" in decoded and "\\boxed{A}" in decoded and "<|im_start|>" not in decoded
    prompt = tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    with torch.no_grad():
        out = model.generate(**tok([prompt], return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > len(tok(prompt)["input_ids"])


def test_cli_builds_a_model(tmp_path, cli, ralign):
    proc = cli([ralign, "tiny-model", "--out", str(tmp_path / "cli"), "--seed", "3", "--hidden-size", "32"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cli" / "config.json").exists()
    bad = cli([ralign, "tiny-model", "--out", str(tmp_path / "bad"), "--vocab-size", "100"])
    assert bad.returncode == 2 and "vocab_size" in bad.stderr


def test_a_tiny_model_is_built_only_where_asked(tmp_path, monkeypatch):
    """Under the run's output folder (the tiny presets' default) a missing model is built; a
    path given elsewhere that holds nothing, or a hub id, is used as given (and fails to
    load, naming it) instead of becoming a random model."""
    from plumbing.config.schema import ModelConfig
    from plumbing.models import resolve_model

    run = tmp_path / "run"
    spec = TinyModelSpec(seed=3)
    built = resolve_model(ModelConfig(name="t", path=str(run / "models" / "tiny"), tiny=spec), str(run))
    assert (Path(built) / "config.json").is_file()
    assert resolve_model(ModelConfig(name="t", path=built, tiny=spec), str(tmp_path / "other")) == built  # ours: reused
    elsewhere = tmp_path / "does" / "not" / "exist"
    assert resolve_model(ModelConfig(name="t", path=str(elsewhere), tiny=spec), str(run)) == str(elsewhere)
    assert not elsewhere.exists()
    monkeypatch.chdir(tmp_path)  # a hub id is a relative path too: not built outside the run's folder
    assert resolve_model(ModelConfig(name="t", path="Qwen/Qwen3-0.6B", tiny=spec), str(run)) == "Qwen/Qwen3-0.6B"
    assert not (tmp_path / "Qwen").exists()
    # the default output_dir is relative: ${output_dir}/models/... stays relative in the model config
    rel = resolve_model(ModelConfig(name="t", path="rel-run/models/tiny", tiny=spec), "rel-run")
    assert (Path(rel) / "config.json").is_file()
    (Path(rel) / "config.json").unlink()  # a build cut short (the marker is written last): built again
    (Path(rel) / "tiny_model.json").unlink()
    assert (Path(resolve_model(ModelConfig(name="t", path=rel, tiny=spec), "rel-run")) / "config.json").is_file()
