"""Small benchmark files in each supported schema, written by the tests.

Answers carry markers for the rule judge in genrm/testing.py: ``<<good>>`` is what it
prefers, ``#tags`` are the reasons it gives, ``<<garbage>>`` makes it write no verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List


def write(path: Path, records: List[Dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ralign_records() -> List[Dict]:
    """6 samples. Rule judge: r1, r2, r5, r6 label-correct; r3 wrong verdict; r4 no verdict.
    MetaRM: r1, r6 Correct; r2 Incorrect (right for a wrong reason); r5 ParseFail."""
    def rec(i, a, b, gt, judgment, subset, turns=None):
        conv = turns or [{"role": "user", "content": f"question {i}"}]
        return {"id": f"r{i}", "conversations": conv, "response_A": a, "response_B": b, "gt_label": gt,
                "gt_judgment": judgment, "source": {"subset": subset}}
    return [
        rec(1, "4 <<good>> #fact", "5", "A", "A is right: #fact", "math"),
        rec(2, "Paris, dear friend <<good>> #style", "Lyon", "A", "<think>hmm</think>A names the city #fact", "chat",
            [{"role": "user", "content": "Capital?"}, {"role": "assistant", "content": "Of what?"},
             {"role": "user", "content": "France."}]),
        rec(3, "a3", "b3 <<good>> #fact", "A", "A #fact", "chat"),
        rec(4, "a4 <<garbage>>", "b4", "B", "B #fact", "chat"),
        rec(5, "a5 <<good>> #fact", "b5", "A", "<<garbage>> #fact", "math"),
        rec(6, "a6", "b6 <<good>> #fact", "B", "B is right #fact", "math"),
    ]


def rationalerm_records() -> List[Dict]:
    """3 samples with human checklists. Rule judge rationale = the chosen answer's tags;
    decomposition = one item per tag; matching = same tag.
      h1: ref [#a, #b], model [#a, #c] -> R1@S1:1, R2@S0 -> P=1/2, R=1/2, F1=1/2, AP=(1/1)/2=1/2
      h2: ref [#x], model [#y, #x]     -> R1@S2:1 -> P=1/2, R=1, F1=2/3, AP=(1/1)/1=1
      h3: tie (overall_preference 0): no label, still scored: ref [#q], model [#q] -> all 1"""
    def rec(i, a, b, pref, checklist, domain):
        return {"id": f"h{i}", "domain": domain, "context": [{"role": "user", "content": f"help me {i}"}],
                "response1": a, "response2": b, "overall_preference": pref, "human-checklist": checklist}
    return [
        rec(1, "r1 <<good>> #a #c", "r2", -2, ["answer 1 is right #a", "answer 1 is kind #b"], "general"),
        rec(2, "r1", "r2 <<good>> #y #x", 3, ["answer 2 cites #x"], "stem"),
        rec(3, "r1 <<good>> #q", "r2", 0, ["equal but #q"], "general"),
    ]


def rm_bench_records() -> List[Dict]:
    """1 record -> 9 pairs; the chosen responses carry <<good>> so the rule judge is always right."""
    return [{"id": 7, "prompt": "Explain X.", "domain": "chat",
             "chosen": ["c1 <<good>>", "c2 <<good>>", "c3 <<good>>"], "rejected": ["r1", "r2", "r3"]}]


def judgebench_records() -> List[Dict]:
    return [
        {"pair_id": "p1", "question": "1+1?", "response_A": "2 <<good>>", "response_B": "3", "label": "A>B",
         "source": "math-easy"},
        {"pair_id": "p2", "question": "2+2?", "response_A": "4 <<good>>", "response_B": "5", "label": "B>A",
         "source": "math-hard"},
    ]
