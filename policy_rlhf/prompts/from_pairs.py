"""Prompts from R-Align preference records: the conversation is the prompt and the golden
preferred response the reference; the domain comes from ``source.subset`` (option
``domains`` maps subset names, e.g. {Math-DPO-10K: stem})."""

from __future__ import annotations

from typing import Any, Dict

from genrm.benchmarks import ralign_bmk
from policy_rlhf.prompts import PromptItem, domain_of

PRODUCES = "policy_prompts"


def convert(rec: Dict[str, Any], options: Dict[str, Any]) -> PromptItem:
    s = ralign_bmk.convert(rec, {})
    mapped = (options.get("domains") or {}).get(s.subset)
    return PromptItem(s.id, s.context, mapped or domain_of(s.subset),
                      s.response_a if s.gt_label == "A" else s.response_b)
