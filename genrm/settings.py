"""Settings shared by the GenRM stages (evaluation, scoring, training rewards)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genrm.metrics import AtomicRules
from plumbing.config.schema import Problems, check_choice


@dataclass
class JudgingSettings:
    swap: bool = False  # judge both orders; report swap consistency
    swap_policy: str = "agree"  # agree: correct only if both orders are right | first: original order counts
    system_prompt: Optional[str] = None  # null = the suite's judge system prompt, "" = none

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "swap_policy", self.swap_policy, ("agree", "first"))
        return p


@dataclass
class MetaRMSettings:
    rationale: str = "answer"  # what the MetaRM reads: the answer after thinking, or the full output
    parse_retries: int = 2

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "rationale", self.rationale, ("answer", "full"))
        return p


@dataclass
class AtomicSettings:
    scope: str = "all"  # all | label_correct: which samples get atomic consistency scores
    # decompose: the MetaJudge splits the GenRM's rationale into atomic reasons;
    # parse: the GenRM writes its reasons as a numbered list itself (RationaleRM-style GenRMs)
    model_items: str = "decompose"
    max_model_items: int = 5
    skip_more_than: int = 10
    skip_empty: bool = True
    max_decomposed_items: int = 10
    parse_retries: int = 2

    def rules(self) -> AtomicRules:
        return AtomicRules(self.max_model_items, self.skip_more_than, self.skip_empty)

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "scope", self.scope, ("all", "label_correct"))
        check_choice(p, "model_items", self.model_items, ("decompose", "parse"))
        if self.max_model_items < 1:
            p.append(("max_model_items", "must be >= 1"))
        return p


@dataclass
class BootstrapSettings:
    samples: int = 1000
    alpha: float = 0.05
    seed: int = 0

    def check(self) -> Problems:
        return [] if 0 < self.alpha < 1 else [("alpha", "must be in (0, 1)")]
