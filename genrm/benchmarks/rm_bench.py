"""RM-Bench (hub `THU-KEG/RM-Bench`): label accuracy only.

Fields: ``id``, ``prompt``, ``chosen`` and ``rejected`` (three responses each: concise,
detailed plain text, detailed markdown), ``domain`` (chat, math, code, safety-refuse,
safety-response). Each record becomes the 3x3 comparisons of a chosen with a rejected
response (``params.pairs: diagonal`` keeps the 3 same-style ones). Difficulty as RM-Bench
reports it: ``normal`` for the same style, ``hard`` when the chosen response is plainer than
the rejected one, ``easy`` when it is fancier. Which response is shown as A is fixed by a
hash of the pair, so labels are balanced and reruns are identical.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict

from genrm.benchmarks import PairwiseFormat
from genrm.records import PairwiseSample, conversation
from plumbing.config.schema import Problems, check_choice
from plumbing.data import FieldError, Many


@dataclass
class RMBenchParams:
    pairs: str = "all"  # all: the 3x3 style pairs; diagonal: the 3 same-style ones

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "pairs", self.pairs, ("all", "diagonal"))
        return p


def _responses(rec: Dict[str, Any], name: str) -> list:
    value = rec.get(name)
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(x, str) for x in value):
        raise FieldError(name, "expected a list of 3 responses (concise, detailed, markdown)")
    return value


class RMBenchFormat(PairwiseFormat):
    Params = RMBenchParams
    breakdowns = ("difficulty",)

    def convert(self, rec: Dict[str, Any]) -> Many:
        if "id" not in rec:
            raise FieldError("id", "missing")
        context = conversation(rec.get("prompt"), "prompt")
        chosen, rejected = _responses(rec, "chosen"), _responses(rec, "rejected")
        diagonal = self.params.pairs == "diagonal"
        out = Many()
        for i in range(3):
            for j in range(3):
                if diagonal and i != j:
                    continue
                pid = f"{rec['id']}:{i}{j}"
                chosen_first = hashlib.sha256(pid.encode()).digest()[0] % 2 == 0
                a, b = (chosen[i], rejected[j]) if chosen_first else (rejected[j], chosen[i])
                difficulty = "normal" if i == j else ("hard" if i < j else "easy")
                out.append(PairwiseSample(id=pid, context=context, response_a=a, response_b=b,
                                          gt_label="A" if chosen_first else "B", subset=rec.get("domain"),
                                          meta={"difficulty": difficulty}))
        return out
