"""Prompts from R-Align preference records: the conversation is the prompt and the golden
preferred response the reference; the domain comes from ``source.subset``
(``params.domains`` maps subset names, e.g. {Math-DPO-10K: stem})."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

from genrm.benchmarks.ralign_bmk import RAlignFormat
from plumbing.config.schema import Problems
from policy_rlhf.prompts import DOMAINS, PromptFormat, PromptItem, domain_of


@dataclass
class FromPairsParams:
    domains: Dict[str, str] = field(default_factory=dict)  # source subset -> domain

    def check(self) -> Problems:
        return [(f"domains.{k}", f"must be one of {list(DOMAINS)}, got {v!r}")
                for k, v in self.domains.items() if v not in DOMAINS]


class PromptsFromPairs(PromptFormat):
    Params = FromPairsParams

    def convert(self, rec: Dict[str, Any]) -> PromptItem:
        s = RAlignFormat().convert(rec)
        mapped = self.params.domains.get(s.subset)
        return PromptItem(s.id, s.context, mapped or domain_of(s.subset),
                          s.response_a if s.gt_label == "A" else s.response_b)
