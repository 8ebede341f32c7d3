"""The job's prompt set leaves out exactly the prompts OpenRLHF would cut: lengths are counted
the way OpenRLHF's own dataset code and agent executor count them (its preprocess_data with the
actor's chat template, then the tokenizer without special tokens)."""

from __future__ import annotations

import json

import pytest

from plumbing.engines.openrlhf import write_prompt_file
from plumbing.errors import SuiteError

pytestmark = pytest.mark.contract


def openrlhf_cuts(tok, row, max_len, max_new_tokens) -> bool:
    """OpenRLHF 0.11.2: PromptDataset's preprocess_data, then the agent executor's test."""
    from openrlhf.datasets.prompts_dataset import preprocess_data

    prompt, _ = preprocess_data(row, input_key="prompt", label_key="label",
                                apply_chat_template=tok.apply_chat_template)
    ids = tok(text=prompt, add_special_tokens=False, return_tensors="pt")["input_ids"][0].tolist()
    return len(ids) > max_len - max_new_tokens


def test_prompts_openrlhf_would_cut_are_dropped_and_counted(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = [{"prompt": "Judge these two answers. " * n, "label": str(n)} for n in (1, 3, 8, 20, 40, 2)]
    rows.append({"prompt": [{"role": "user", "content": "short chat " * 30}], "label": "chat"})
    max_prompt_len, max_new = 120, 64
    path = tmp_path / "train.jsonl"
    report = write_prompt_file(path, rows, str(tiny_model), max_prompt_len, dry_run=False)
    written = [json.loads(line) for line in path.read_text().splitlines()]
    cut = [r for r in rows if openrlhf_cuts(tok, r, max_prompt_len + max_new, max_new)]
    assert 0 < len(cut) < len(rows)  # the case is a real one: some kept, some cut
    assert written == [r for r in rows if r not in cut]
    assert report["dropped_too_long"] == len(cut) and report["kept"] == len(written) and report["checked"]
    assert report["longest_prompt_tokens"] <= max_prompt_len


def test_no_tokenizer_fails_a_real_run_but_a_dry_run_writes_everything_and_says_so(tmp_path):
    rows = [{"prompt": "x " * 5000, "label": "a"}]
    with pytest.raises(SuiteError, match="tokenizer of /nowhere/model"):
        write_prompt_file(tmp_path / "a.jsonl", rows, "/nowhere/model", 16, dry_run=False)
    report = write_prompt_file(tmp_path / "b.jsonl", rows, "/nowhere/model", 16, dry_run=True)
    assert not report["checked"] and "not checked" in report["lengths"]
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 1


def test_every_prompt_too_long_is_an_error_naming_the_key(tmp_path, tiny_model):
    with pytest.raises(SuiteError, match="algo.max_prompt_len=4"):
        write_prompt_file(tmp_path / "c.jsonl", [{"prompt": "a long prompt " * 10, "label": ""}],
                          str(tiny_model), 4, dry_run=False)
