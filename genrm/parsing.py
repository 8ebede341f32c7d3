"""Parsers for what GenRMs, MetaRMs and MetaJudges write. Lenient about form, strict about
meaning: a verdict is taken only when it is unambiguous, otherwise the caller counts a
parse failure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

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
# R-Align's own MetaRM prompt asks for XML: <final_verdict>Correct</final_verdict>
_METARM_XML = re.compile(r"<final_verdict>\s*[*_`]*\s*(correct|incorrect)\s*[*_`]*\s*[.!]?\s*</final_verdict>", re.IGNORECASE)


def parse_metarm(text: Optional[str]) -> Optional[str]:
    """'Correct' or 'Incorrect' from the MetaRM's final verdict (a "Verdict: ..." line, a
    boxed word, or R-Align's ``<final_verdict>`` tag; the last one given), else None."""
    answer = strip_thinking(text or "")
    found: List[Tuple[int, str]] = []
    for pattern in (_METARM, _METARM_BOXED, _METARM_XML):
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
# RationaleRM's analysis: "- R<i>@S<j>: <number>" anywhere in the block, other text ignored
_MATCH_ANYWHERE = re.compile(r"- R(\d+)@S(\d+): (\d+(?:\.\d+)?)")
ALLOWED_SCORES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class MatchRules:
    """How a matcher's answer is read: each rule a named setting, grouped in two profiles.

    ``strict`` (the suite's, for its own matcher prompt) and ``reference`` (RationaleRM's
    metajudge_analysis.py, so scores of its matcher outputs equal the published ones):

    - block: ``last`` block after the thinking, end marker optional | ``first`` block
      anywhere in the text, end marker required;
    - lines: ``every`` non-empty line must be a match line | ``any``: match lines are found
      within the block and other text (a header line) is ignored;
    - scores: ``quarters`` {0, .25, .5, .75, 1} | ``unit``: any number in [0, 1];
    - indices: ``exact``: R1..Rn once each, S in 0..m | ``count``: n lines, whatever their R
      numbers; a match to an item past m (the model list is cut to its first items) or to
      no reference item is dropped;
    - zero_in_ap: a model item whose best match scores 0 is ranked in AP (``reference``)
      or left out (``strict``).
    """

    block: str = "last"
    lines: str = "every"
    scores: str = "quarters"
    indices: str = "exact"
    zero_in_ap: bool = False


MATCH_PROFILES = {
    "strict": MatchRules(),
    "reference": MatchRules(block="first", lines="any", scores="unit", indices="count", zero_in_ap=True),
}
MATCH_CHOICES = {"block": ("last", "first"), "lines": ("every", "any"), "scores": ("quarters", "unit"),
                 "indices": ("exact", "count")}


@dataclass
class MatchParse:
    """The matcher's (reference item i, model item j or 0, score) lines; or why it is invalid."""

    matches: Optional[List[Tuple[int, int, float]]]
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.matches is not None


def _block(text: str, rules: MatchRules) -> Optional[str]:
    if rules.block == "first":
        m = re.search(re.escape(RESULT_START) + "(.*?)" + re.escape(RESULT_END), text, re.DOTALL)
        return m.group(1) if m else None
    answer = strip_thinking(text)
    start = answer.rfind(RESULT_START)
    if start == -1:
        return None
    block = answer[start + len(RESULT_START):]
    end = block.find(RESULT_END)
    return block[:end] if end != -1 else block


def read_matches(text: Optional[str], rules: MatchRules = MATCH_PROFILES["strict"]) -> MatchParse:
    """The ``(i, j, score)`` lines of a matcher answer, as ``rules`` find them (block, line
    form, score range), before they are checked against the sample's lists."""
    block = _block(text or "", rules)
    if block is None:
        return MatchParse(None, f"no {RESULT_START}...{RESULT_END} block" if rules.block == "first"
                          else f"no {RESULT_START} block")
    if rules.lines == "any":
        found = [(int(i), int(j), float(v)) for i, j, v in _MATCH_ANYWHERE.findall(block)]
        if not found:
            return MatchParse(None, "no match lines")
    else:
        found = []
        for line in block.splitlines():
            if not line.strip():
                continue
            mm = _MATCH_LINE.match(line)
            if not mm:
                return MatchParse(None, f"malformed line {line.strip()!r}")
            found.append((int(mm.group(1)), int(mm.group(2)), float(mm.group(3))))
    for i, j, score in found:
        if rules.scores == "quarters" and score not in ALLOWED_SCORES:
            return MatchParse(None, f"score {score} not in {ALLOWED_SCORES}")
        if not 0 <= score <= 1:
            return MatchParse(None, f"score {score} of R{i}@S{j} outside [0, 1]")
    return MatchParse(found)


def check_matches(found: List[Tuple[int, int, float]], n: int, m: int,
                  rules: MatchRules = MATCH_PROFILES["strict"]) -> MatchParse:
    """The lines against a sample of n reference and m model items (``rules.indices``)."""
    if rules.indices == "exact":
        seen = set()
        for i, j, _ in found:
            if not 1 <= i <= n:
                return MatchParse(None, f"reference index R{i} outside 1..{n}")
            if not 0 <= j <= m:
                return MatchParse(None, f"model index S{j} outside 0..{m}")
            if i in seen:
                return MatchParse(None, f"R{i} appears twice")
            seen.add(i)
    if len(found) != n:
        return MatchParse(None, f"{len(found)} lines for {n} reference items")
    return MatchParse([(i, j, 0.0 if j == 0 else score) for i, j, score in found])


def parse_matches(text: Optional[str], n: int, m: int, rules: MatchRules = MATCH_PROFILES["strict"]) -> MatchParse:
    """Matcher lines ``- R<i>@S<j>: <score>`` between the result markers, read and checked
    by ``rules`` (see :class:`MatchRules`); S0 means no match."""
    read = read_matches(text, rules)
    return check_matches(read.matches, n, m, rules) if read.ok else read
