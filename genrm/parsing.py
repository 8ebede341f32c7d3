"""Parsers for what GenRMs, MetaRMs and MetaJudges write. Lenient about form, strict about
meaning: a verdict is taken only when it is unambiguous, otherwise the caller counts a
parse failure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

_THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think\s*>", re.IGNORECASE)
# The start of `\boxed{...}`, with or without the backslash; the content is read by brace
# matching (any nesting: \boxed{\frac{\sqrt{3}}{2}}).
_BOXED_START = re.compile(r"\\?boxed\s*\{", re.IGNORECASE)
_BOX_CONTENT = re.compile(r"^(?:(?:response|assistant|answer|output|option|model)\s*)?\(?([AB])\)?$", re.IGNORECASE)
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")


def boxed(text: str) -> List[str]:
    """The contents of every complete ``\\boxed{...}`` in ``text``, in order."""
    out = []
    for m in _BOXED_START.finditer(text or ""):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1])
    return out


def strip_thinking(text: str, keep_indent: bool = False) -> str:
    """The answer part of a model output: everything after the last ``</think>``.

    An opening ``<think>`` that is never closed (a truncated output) leaves no answer.
    A closing tag without an opening one (templates that pre-fill ``<think>``) still ends
    the thinking. ``keep_indent`` trims only blank lines at the start, so a code completion
    keeps the indentation of its first line."""
    if text is None:
        return ""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        answer = text[closes[-1].end():]
    elif _THINK_OPEN.search(text):
        return ""
    else:
        answer = text
    return answer.lstrip("\r\n").rstrip() if keep_indent else answer.strip()


def _box_label(content: str) -> Optional[str]:
    inner = content
    for _ in range(2):
        inner = _LATEX_WRAP.sub(r"\1", inner)
    inner = inner.strip().strip("*_`'\"").strip()
    m = _BOX_CONTENT.match(inner)
    return m.group(1).upper() if m else None


def parse_verdict(text: Optional[str]) -> Optional[str]:
    """'A' or 'B' from the last boxed verdict after thinking is removed, else None."""
    answer = strip_thinking(text or "")
    for content in reversed(boxed(answer)):
        label = _box_label(content)
        if label is not None:
            return label
    return None


# ---------------------------------------------------------------------------- MetaRM
_METARM = re.compile(
    r"(?:verdict|judgment|judgement|decision|final answer)\s*[:：]?\s*[*_`\[\(]*\s*(correct|incorrect)\b",
    re.IGNORECASE,
)
_METARM_BOXED = re.compile(r"(?:\\?boxed\s*\{|\[\[)\s*(correct|incorrect)\s*(?:\}|\]\])", re.IGNORECASE)


def parse_metarm(text: Optional[str]) -> Optional[str]:
    """'Correct' or 'Incorrect' from the MetaRM's final verdict line, else None."""
    answer = strip_thinking(text or "")
    found: List[Tuple[int, str]] = []
    for pattern in (_METARM, _METARM_BOXED):
        found += [(m.start(), m.group(1)) for m in pattern.finditer(answer)]
    if not found:
        return None
    return max(found)[1].capitalize()


# ---------------------------------------------------------------------------- MetaJudge
_ITEM = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•])\s+(.+?)\s*$")


def parse_checklist(text: Optional[str]) -> List[str]:
    """Atomic reasons written one per line as ``1. ...`` or ``- ...``."""
    answer = strip_thinking(text or "")
    items = []
    for line in answer.splitlines():
        m = _ITEM.match(line)
        if m:
            item = m.group(1).strip().strip("*").strip()
            if item:
                items.append(item)
    return items


RESULT_START, RESULT_END = "<RESULT_START>", "<RESULT_END>"
_MATCH_LINE = re.compile(r"^\s*[-*]?\s*R(\d+)\s*@\s*S(\d+)\s*:\s*([0-9]*\.?[0-9]+)\s*$", re.IGNORECASE)
ALLOWED_SCORES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class MatchParse:
    """For each reference item i (1..n): (model item j or 0, score); or why it is invalid."""

    matches: Optional[Dict[int, Tuple[int, float]]]
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.matches is not None


def parse_matches(text: Optional[str], n: int, m: int) -> MatchParse:
    """Matcher lines ``- R<i>@S<j>: <score>`` between the result markers (the last block;
    a missing end marker is tolerated). Valid only with exactly one line per reference item
    1..n, model indices in 0..m and scores in {0, .25, .5, .75, 1}; S0 means no match."""
    answer = strip_thinking(text or "")
    start = answer.rfind(RESULT_START)
    if start == -1:
        return MatchParse(None, "no <RESULT_START> block")
    block = answer[start + len(RESULT_START):]
    end = block.find(RESULT_END)
    if end != -1:
        block = block[:end]
    matches: Dict[int, Tuple[int, float]] = {}
    for line in block.splitlines():
        if not line.strip():
            continue
        mm = _MATCH_LINE.match(line)
        if not mm:
            return MatchParse(None, f"malformed line {line.strip()!r}")
        i, j, score = int(mm.group(1)), int(mm.group(2)), float(mm.group(3))
        if not 1 <= i <= n:
            return MatchParse(None, f"reference index R{i} outside 1..{n}")
        if not 0 <= j <= m:
            return MatchParse(None, f"model index S{j} outside 0..{m}")
        if score not in ALLOWED_SCORES:
            return MatchParse(None, f"score {score} not in {ALLOWED_SCORES}")
        if i in matches:
            return MatchParse(None, f"R{i} appears twice")
        matches[i] = (j, 0.0 if j == 0 else score)
    if len(matches) != n:
        return MatchParse(None, f"{len(matches)} lines for {n} reference items")
    return MatchParse(matches)
