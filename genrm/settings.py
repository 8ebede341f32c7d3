"""Settings shared by the GenRM stages (evaluation, scoring, training rewards)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Optional

from genrm.metrics import AtomicRules
from genrm.parsing import MATCH_CHOICES, MATCH_PROFILES, MatchRules
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
class AtomicListSettings:
    """Which model reason lists are matched, and how many of their items (the reference
    analysis's rules; defaults are genrm.metrics.AtomicRules's)."""

    max_model_items: int = AtomicRules.max_model_items  # the list is cut to its first k items
    skip_more_than: int = AtomicRules.skip_more_than  # longer lists: the sample is skipped
    skip_empty: bool = AtomicRules.skip_empty
    max_decomposed_items: int = 10  # reasons the MetaJudge may split a rationale into

    def check(self) -> Problems:
        return [("max_model_items", "must be >= 1")] if self.max_model_items < 1 else []


@dataclass
class AtomicSettings(AtomicListSettings):
    scope: str = "all"  # all | label_correct: which samples get atomic consistency scores
    # decompose: the MetaJudge splits the GenRM's rationale into atomic reasons;
    # parse: the GenRM writes its reasons as a numbered list itself (RationaleRM-style GenRMs)
    model_items: str = "decompose"
    parse_retries: int = 2
    # How a matcher's answer is read (genrm.parsing.MatchRules): a profile, ``strict`` (the
    # suite's own matcher prompt) or ``reference`` (RationaleRM's analysis script, the
    # default of genrm.score), and any of its rules set one by one over it (null: the profile's).
    profile: str = "strict"
    block: Optional[str] = None  # last | first
    lines: Optional[str] = None  # every | any
    scores: Optional[str] = None  # quarters | unit
    indices: Optional[str] = None  # exact | count
    zero_in_ap: Optional[bool] = None
    failed_call: Optional[str] = None  # stop | error (a matcher output without an answer)
    errors_first: Optional[bool] = None  # an unreadable answer is an error before any list is passed over

    def match_rules(self) -> MatchRules:
        given = {k: getattr(self, k) for k in ("block", "lines", "scores", "indices", "zero_in_ap")}
        return replace(MATCH_PROFILES.get(self.profile, MATCH_PROFILES["strict"]),
                       **{k: v for k, v in given.items() if v is not None})

    def rules(self) -> AtomicRules:
        reference = self.profile == "reference"
        failed = self.failed_call or ("error" if reference else "stop")
        first = reference if self.errors_first is None else self.errors_first
        return AtomicRules(self.max_model_items, self.skip_more_than, self.skip_empty, self.match_rules(), failed, first)

    def describe(self) -> Dict[str, Any]:
        """The profile and every rule in force, for the summary."""
        r = self.rules()
        return {"profile": self.profile, **asdict(r.match), "failed_call": r.failed_call, "errors_first": r.errors_first,
                "max_model_items": r.max_model_items, "skip_more_than": r.skip_more_than, "skip_empty": r.skip_empty}

    def check(self) -> Problems:
        p: Problems = super().check()
        check_choice(p, "scope", self.scope, ("all", "label_correct"))
        check_choice(p, "model_items", self.model_items, ("decompose", "parse"))
        check_choice(p, "profile", self.profile, tuple(MATCH_PROFILES))
        for key, choices in MATCH_CHOICES.items():
            if getattr(self, key) is not None:
                check_choice(p, key, getattr(self, key), choices)
        if self.failed_call is not None:
            check_choice(p, "failed_call", self.failed_call, ("stop", "error"))
        return p


@dataclass
class BootstrapSettings:
    samples: int = 1000
    alpha: float = 0.05
    seed: int = 0

    def check(self) -> Problems:
        return [] if 0 < self.alpha < 1 else [("alpha", "must be in (0, 1)")]
