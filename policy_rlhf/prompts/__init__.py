"""Prompt data for policy training: formats (a :class:`PromptFormat` subclass each) and the
domain mixture.

Every format gives :class:`PromptItem`: the conversation to answer, a domain tag (stem,
code, if, general) and, when the data has one, a reference response (reference mode of the
pairwise reward). ``mix`` draws a training set from several data sets by their weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from plumbing.data import DataFormat

DOMAINS = ("stem", "code", "if", "general")
_ALIASES = {"math": "stem", "science": "stem", "stem": "stem", "reasoning": "stem", "code": "code",
            "coding": "code", "if": "if", "instruction_following": "if", "instruction-following": "if",
            "general": "general", "chat": "general", "multilingual": "general"}


@dataclass
class PromptItem:
    id: str
    context: List[Dict[str, str]]
    domain: str
    reference: Optional[str] = None

    def as_row(self) -> Dict[str, object]:
        return {"id": self.id, "context": self.context, "domain": self.domain, "reference": self.reference}


class PromptFormat(DataFormat):
    """A format of policy prompts, the kind policy training reads."""

    produces = "policy_prompts"  # convert() returns PromptItem


def domain_of(value: Optional[str], default: str = "general") -> str:
    """A source's domain name mapped onto the four domains (unknown names: ``default``)."""
    if value is None:
        return default
    key = str(value).strip().lower()
    for alias, domain in _ALIASES.items():
        if key == alias or key.startswith(alias):
            return domain
    return default


def mix(datasets: Mapping[str, Sequence[PromptItem]], weights: Mapping[str, float], total: Optional[int],
        seed: int = 0) -> List[PromptItem]:
    """All items (``total`` None), or ``total`` items split by weight, each share drawn from
    its data set without replacement while it lasts (then with). Order shuffled, seeded."""
    rng = random.Random(seed)
    if total is None:
        out = [item for items in datasets.values() for item in items]
    else:
        norm = sum(weights[n] for n in datasets if weights[n] > 0)
        out, given = [], 0
        names = [n for n in datasets if weights[n] > 0]
        for k, name in enumerate(names):
            share = total - given if k == len(names) - 1 else round(total * weights[name] / norm)
            given += share
            pool = list(datasets[name])
            rng.shuffle(pool)
            out += [pool[i % len(pool)] for i in range(share)] if pool else []
    rng.shuffle(out)
    return out
