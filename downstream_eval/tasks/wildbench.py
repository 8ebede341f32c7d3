"""WildBench v2 on its own protocol (allenai/WildBench: ``src/eval.py``, the templates in
``evaluation/``, the leaderboard's ``_create_tables.py``), in code of our own.

``mode: score`` (WB-Score): the judge reads the conversation, the answer and the item's
checklist and gives a 1-10 score (an empty answer gets 1 without asking, as WildBench does).
A score s is rescaled to (s - 5) * 2 (5, "borderline acceptable", becomes 0; 10 becomes 10),
and the leaderboard's WB-Score is the task macro average x 10: the rescaled mean of each task
group (WildBench's twelve tags, primary and secondary, mapped onto five groups; an item counts
once in each of its groups) averaged with the weights Creative 0.5, Planning & Reasoning 1.25,
Math & Data Analysis 1, Information/Advice seeking 0.75, Coding & Debugging 1.25 (over the
groups present). ``wb_score_micro`` is (mean s - 5) * 2 * 10 over all items.

``mode: reward`` (WB-Reward): the judge compares the answer with a reference model's answer
(``reference_field``: the benchmark's own GPT-4 answer, or ``reference_path``: a reference
model's outputs joined by id) and chooses A++, A+, A=B, B+ or B++; the policy's reward is
+100 much better, +50 slightly better, 0 tie, -50 slightly worse, -100 much worse. With the
length penalty K (``length_penalty``, characters; null = K infinite, no penalty) a slight win
or loss becomes a tie when the winner's answer is more than K characters longer than the
loser's. As WildBench, the answer's position (A or B) is chosen at random per item (here a
hash of the item and the answer, so a rerun asks the same thing), or both orders averaged
(``both_orders``). An empty answer loses much without asking. ``wb_reward`` is the mean
reward, ``wb_reward_macro`` the weighted task macro, both on WildBench's -100..100 scale.

The task's ``score`` (what the suite averages) is the headline / 100: WB-Score's macro (range
-0.8..1) or the mean reward (-1..1). A judge that does not answer, or never gives a score or
choice in range after ``parse_retries`` re-asks, leaves the item out (WildBench drops it) and
is counted as a judge failure. Not replicated: the leaderboard's tables also drop items whose
answers were cut at ``max_words`` or were empty; here ``max_words`` (null: no cut, as WildBench
runs WB-Score) only shortens what the judge sees.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from downstream_eval.tasks import Doc, Grade, Task, flatten, regroup
from downstream_eval.tasks.judge_protocol import (ProtocolJudgeTask, answers_by_id, judge_record, percentile_interval,
                                                   weighted_groups)
from downstream_eval.tasks.pairwise import field_at
from genrm.records import conversation
from plumbing.data import FieldError

PROMPT_VERSION = "wildbench-v2/ralign-1"  # bump with any change to the judge's prompts below
MODES = ("score", "reward")

# WildBench's tags -> its five task groups (named here by slugs: Creative Tasks, Planning &
# Reasoning, Math & Data Analysis, Information/Advice seeking, Coding & Debugging), and the groups'
# weights in the task macro average
TAG_GROUPS = {
    "Information seeking": "info_advice", "Advice seeking": "info_advice",
    "Creative Writing": "creative", "Editing": "creative", "Brainstorming": "creative",
    "Role playing": "creative", "Others": "creative",
    "Coding & Debugging": "coding_debugging",
    "Reasoning": "planning_reasoning", "Planning": "planning_reasoning",
    "Math": "math_data_analysis", "Data Analysis": "math_data_analysis",
}
GROUP_WEIGHTS = {"creative": 0.5, "planning_reasoning": 1.25, "math_data_analysis": 1.0, "info_advice": 0.75,
                 "coding_debugging": 1.25}
# a choice, from the side of the answer shown as A -> (outcome name, reward of A)
CHOICES = {"A++": 1.0, "A+": 0.5, "A=B": 0.0, "B+": -0.5, "B++": -1.0}
OUTCOMES = {1.0: "win_much", 0.5: "win", 0.0: "tie", -0.5: "lose", -1.0: "lose_much"}

_CONTEXT = (
    "## Earlier conversation\n<|begin_of_history|>\n{history}\n<|end_of_history|>\n\n"
    "## The user's current query\n<|begin_of_query|>\n{query}\n<|end_of_query|>\n\n")
_CHECKLIST = (
    "## Checklist\n<|begin_of_checklist|>\n{checklist}<|end_of_checklist|>\n\n"
    "Let the checklist guide your evaluation, without limiting it to the checklist.\n\n")
SCORE_PROMPT = (
    "# Task\nYou evaluate the quality of one AI assistant's response. Read the earlier conversation and the "
    "user's current query carefully to understand the task, then judge the response by the rules below.\n\n"
    + _CONTEXT + "## The response\n<|begin_of_response|>\n{answer}\n<|end_of_response|>\n\n" + _CHECKLIST +
    "# Rules\nAnalyse the response against the query and the conversation, write down the checklist you "
    "used, then assess the response by it. Score it from 1 to 10:\n"
    "- 1-2: very poor, makes no sense at all.\n"
    "- 3-4: poor, does not help the user solve the problem in a meaningful way.\n"
    "- 5-6: fair, but with issues such as factual errors, hallucinations or missing key information.\n"
    "- 7-8: good, though it could be improved in some ways.\n"
    "- 9-10: excellent, gives helpful information that solves the user's problem.\n\n"
    "# Output\nWrite your analysis first, then summarise it as strengths and weaknesses, and give your score, "
    "as this JSON object:\n"
    "```\n{{\n    \"strengths\": \"...\",\n    \"weaknesses\": \"...\",\n    \"score\": \"<1 to 10>\"\n}}\n```")
REWARD_PROMPT = (
    "# Task\nYou compare two AI assistants' responses (response A and response B) to the same query. Read "
    "the earlier conversation and the user's current query carefully to understand the task, then judge the "
    "responses by the rules below.\n\n"
    + _CONTEXT + "## Response A\n<|begin_of_response_A|>\n{a}\n<|end_of_response_A|>\n\n"
    "## Response B\n<|begin_of_response_B|>\n{b}\n<|end_of_response_B|>\n\n" + _CHECKLIST +
    "# Rules\nAnalyse both responses against the query and the conversation, write down the checklist you "
    "used, then decide by it. Choose one of five verdicts:\n"
    "- \"A++\": response A is much better than response B.\n"
    "- \"A+\": response A is slightly better than response B.\n"
    "- \"A=B\": both are of the same quality (use this sparingly).\n"
    "- \"B+\": response B is slightly better than response A.\n"
    "- \"B++\": response B is much better than response A.\n\n"
    "# Output\nAnalyse each response first, then say where they do equally well, where A is better and where "
    "B is better, and make your choice, as this JSON object:\n"
    "```\n{{\n    \"analysis of A\": \"...\",\n    \"analysis of B\": \"...\",\n    \"reason of A=B\": \"...\",\n"
    "    \"reason of A>B\": \"...\",\n    \"reason of B>A\": \"...\",\n"
    "    \"choice\": \"<A++, A+, A=B, B+ or B++>\"\n}}\n```")


def _json_value(text: str, key: str) -> Optional[str]:
    """``key``'s value in the judge's JSON answer: the whole answer (code fences and thinking
    removed) as JSON, else the last ``"key": value`` written in it (quoted or not)."""
    from genrm.parsing import strip_thinking

    answer = strip_thinking(text or "").strip()
    fenced = re.sub(r"^```(?:json)?\s*|\s*```$", "", answer)
    try:
        obj = json.loads(fenced)
        if isinstance(obj, dict) and key in obj:
            return str(obj[key]).strip()
    except ValueError:
        pass
    found = re.findall(rf'"{re.escape(key)}"\s*:\s*(?:"([^"]*)"|([^,\s}}"]+))', answer)
    return (found[-1][0] or found[-1][1]).strip() if found else None


def parse_score(text: str) -> Optional[float]:
    """The 1-10 score of a WB-Score judgment; None when missing, not a number or out of range."""
    value = _json_value(text, "score")
    try:
        s = float(value) if value is not None else None
    except ValueError:
        return None
    return s if s is not None and 1 <= s <= 10 else None


def parse_choice(text: str) -> Optional[str]:
    """The choice of a WB-Reward judgment (A++, A+, A=B, B+, B++); None otherwise."""
    value = _json_value(text, "choice")
    value = value.upper().replace(" ", "") if value else None
    return value if value in CHOICES else None


def rescale(score: float) -> float:
    """WildBench's rescaling of a 1-10 score: (s - 5) * 2."""
    return (score - 5.0) * 2.0


def policy_reward(choice: str, policy_is_a: bool, policy_len: int, ref_len: int, k: Optional[int]) -> float:
    """The policy's reward (-1..1) from a choice; a slight win or loss is a tie when the
    winner's answer is more than ``k`` characters longer than the loser's."""
    r = CHOICES[choice] if policy_is_a else -CHOICES[choice]
    if k is not None and abs(r) == 0.5:
        winner, loser = (policy_len, ref_len) if r > 0 else (ref_len, policy_len)
        if winner > loser + k:
            return 0.0
    return r


def shorten(text: str, max_words: Optional[int]) -> str:
    words = text.split(" ")
    return text if not max_words or len(words) <= max_words else " ".join(words[:max_words]) + "... (truncated)"


REFERENCE = "__wildbench_reference__"


@dataclass
class WildBenchParams:
    mode: str = "score"  # score: WB-Score; reward: WB-Reward against the reference
    conversation_field: str = "conversation_input"  # turns ending with the user's
    checklist_field: str = "checklist"
    id_field: str = "session_id"
    tag_fields: List[str] = field(default_factory=lambda: ["primary_tag", "secondary_tags"])
    reference_field: str = "references.gpt-4"  # in the record, or in reference_path's records
    reference_path: Optional[str] = None  # a reference model's answers, joined by id
    reference_id_field: Optional[str] = None  # the id in that file; null: id_field
    length_penalty: Optional[int] = None  # K characters; null: no penalty
    both_orders: bool = False  # reward: judge both positions and average (WildBench: one, at random)
    max_words: Optional[int] = None  # cut what the judge sees to this many words
    parse_retries: int = field(default=2, metadata={"range": (0, 10)})
    group_weights: Dict[str, float] = field(default_factory=lambda: dict(GROUP_WEIGHTS))

    def check(self) -> List[Tuple[str, str]]:
        p = []
        if self.mode not in MODES:
            p.append(("mode", f"must be one of {list(MODES)}, got {self.mode!r}"))
        unknown = sorted(set(self.group_weights) - set(GROUP_WEIGHTS))
        if unknown:
            p.append(("group_weights", f"unknown group(s) {unknown}; the groups are {sorted(GROUP_WEIGHTS)}"))
        if self.max_words is not None and self.max_words < 1:
            p.append(("max_words", "must be at least 1 (or null: no cut)"))
        return p


class WildBenchTask(ProtocolJudgeTask):
    Params = WildBenchParams
    made_of_grades = Task.made_of_grades + ("wb_", "by_category", "outcomes")
    prompt_name = PROMPT_VERSION

    def judge_prompt(self) -> str:
        """Both modes' judge prompts (WB-Score, WB-Reward), as templates."""
        return SCORE_PROMPT + "\0" + REWARD_PROMPT

    def raw_records(self) -> List[Tuple[int, Dict[str, Any]]]:
        rows = super().raw_records()
        o = self.params
        if o.mode != "reward" or not o.reference_path:
            return rows
        answers = answers_by_id(o.reference_path, o.reference_id_field or o.id_field)
        return [(line, {**rec, REFERENCE: answers.get(str(field_at(rec, o.id_field)))}) for line, rec in rows]

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        if field_at(rec, o.conversation_field) is None:
            raise FieldError(o.conversation_field, "missing")
        context = conversation(field_at(rec, o.conversation_field), o.conversation_field)
        checklist = field_at(rec, o.checklist_field) or []
        if not isinstance(checklist, list):
            raise FieldError(o.checklist_field, "expected a list of checklist questions")
        groups = []
        for name in o.tag_fields:
            tags = field_at(rec, name)
            for tag in [tags] if isinstance(tags, str) else tags or []:
                if tag not in TAG_GROUPS:
                    raise FieldError(name, f"tag {tag!r} is not one of WildBench's {sorted(TAG_GROUPS)}")
                groups.append(TAG_GROUPS[tag])
        meta = {"context": context, "checklist": [str(c) for c in checklist], "groups": list(dict.fromkeys(groups))}
        target = None
        if o.mode == "reward":
            source = rec.get(REFERENCE, rec) if o.reference_path else rec
            if source is None:
                raise FieldError(o.id_field, f"no reference answer with this id in {o.reference_path}")
            target = field_at(source, o.reference_field)
            if isinstance(target, list) and target:  # WildBench's model outputs are lists of samples
                target = target[0]
            if not isinstance(target, str) or not target.strip():
                raise FieldError(o.reference_field, "missing or empty (the reference answer)")
        rid = str(field_at(rec, o.id_field) or f"{self.cfg.name}-{index}")
        system = [{"role": "system", "content": self.cfg.system_prompt}] if self.cfg.system_prompt else []
        return Doc(rid, system + context, target, meta)

    def _context(self, doc: Doc) -> Dict[str, str]:
        o = self.params
        turns = doc.meta["context"]
        history = "".join(f"{'USER' if m['role'] == 'user' else 'ASSISTANT'}: {m['content']}\n\n"
                          for m in turns[:-1] if m["role"] in ("user", "assistant"))
        return {"history": shorten(history, o.max_words), "query": shorten(turns[-1]["content"], o.max_words),
                "checklist": "".join(f"- {c}\n" for c in doc.meta["checklist"])}

    def _shown(self, text: str) -> str:
        return shorten(text, self.params.max_words) if text.strip() else "[This model response is empty.]"

    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        from plumbing.llm.parsed import complete_parsed
        from plumbing.llm.types import ChatRequest, SamplingParams

        o = self.params
        sampling = SamplingParams.from_config(self.ctx["judge_sampling"])
        jobs = flatten(items)
        asks: List[Tuple[int, bool]] = []  # (job, policy shown as A) per judge request
        requests = []
        for k, (doc, out) in enumerate(jobs):
            if not out.strip():
                continue  # decided without the judge
            if o.mode == "score":
                text = SCORE_PROMPT.format(**self._context(doc), answer=self._shown(out))
                asks.append((k, True))
                requests.append(ChatRequest.of([{"role": "user", "content": text}], sampling))
                continue
            sides = [True, False] if o.both_orders else [self.policy_first(doc, out)]
            for policy_is_a in sides:
                a, b = (out, doc.target) if policy_is_a else (doc.target, out)
                text = REWARD_PROMPT.format(**self._context(doc), a=self._shown(a), b=self._shown(b))
                asks.append((k, policy_is_a))
                requests.append(ChatRequest.of([{"role": "user", "content": text}], sampling))
        parse = parse_score if o.mode == "score" else parse_choice
        answers = complete_parsed(self.ctx["judge"], requests, parse, o.parse_retries)
        per_job: Dict[int, list] = {}
        for (k, policy_is_a), a in zip(asks, answers):
            per_job.setdefault(k, []).append((policy_is_a, a))
        who = judge_record(self.ctx, self.judge_prompt_version())
        grades = [self._grade(doc, out, per_job.get(k, []), who) for k, (doc, out) in enumerate(jobs)]
        return regroup(items, grades)

    @staticmethod
    def policy_first(doc: Doc, out: str) -> bool:
        """WildBench's coin flip for the answer's position, made repeatable."""
        return hashlib.sha256(f"{doc.id}\0{out}".encode()).digest()[0] % 2 == 0

    def _grade(self, doc: Doc, out: str, asked: list, who: Dict[str, Any]) -> Grade:
        o = self.params
        detail: Dict[str, Any] = {"groups": doc.meta["groups"], **who,
                                  "judge_status": [a.status for _, a in asked],
                                  "judge_raw": [a.raw for _, a in asked]}
        if o.mode == "score":
            if not asked:  # an empty answer: 1, as WildBench gives it
                return Grade(rescale(1) / 10, "1", "score=1", {**detail, "wb_raw": 1.0})
            a = asked[0][1]
            if not a.ok:
                return Grade(0.0, None, f"judge_{a.status}", detail)
            return Grade(rescale(a.value) / 10, f"{a.value:g}", f"score={a.value:g}", {**detail, "wb_raw": a.value})
        if not asked:  # an empty answer loses much to a non-empty reference
            detail.update(choices=[], wb_reward=-1.0)
            return Grade(-1.0, None, "lose_much", detail)
        if not all(a.ok for _, a in asked):
            bad = next(a for _, a in asked if not a.ok)
            return Grade(0.0, None, f"judge_{bad.status}", {**detail, "choices": [a.value for _, a in asked]})
        pl, rl = len(out.strip()), len(doc.target.strip())
        rewards = [policy_reward(a.value, first, pl, rl, o.length_penalty) for first, a in asked]
        reward = sum(rewards) / len(rewards)
        detail.update(choices=[(a.value, "policy=A" if first else "policy=B") for first, a in asked],
                      rewards=rewards, wb_reward=reward)
        return Grade(reward, "|".join(a.value for _, a in asked), OUTCOMES.get(reward, "mixed"), detail)

    def macro(self, values: Sequence[float], groups: Sequence[Sequence[str]]) -> Optional[float]:
        """Weighted mean over the task groups present of each group's mean."""
        means = weighted_groups(values, groups)
        w = self.params.group_weights
        total = sum(w.get(g, 0.0) for g in means)
        return sum(m * w.get(g, 0.0) for g, m in means.items()) / total if total else None

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        out = super().summarize(grades)
        o = self.params
        flat = [g for gs in grades for g in gs]
        out.update(self.judge_summary(flat))
        key = "wb_raw" if o.mode == "score" else "wb_reward"
        kept = [g for g in flat if key in g.detail]
        vals = np.array([g.detail[key] for g in kept], float)
        groups = [g.detail.get("groups") or [] for g in kept]
        out["judged"] = len(kept)
        out["score"] = out["score_ci"] = None
        if not len(vals):
            return out
        b = self.ctx.get("bootstrap")
        rounds, level, seed = (b.samples, 1 - b.alpha, b.seed) if b else (1000, 0.95, 0)
        if o.mode == "score":
            def headline(idx: np.ndarray) -> float:
                sub = [groups[i] for i in idx]
                m = self.macro([rescale(v) for v in vals[idx]], sub) if any(sub) else None
                return m if m is not None else rescale(float(vals[idx].mean()))

            out["wb_score_micro"] = rescale(float(vals.mean())) * 10
            out["wb_score_raw_mean"] = float(vals.mean())
            by = weighted_groups([rescale(v) * 10 for v in vals], groups)
            macro = self.macro([rescale(v) for v in vals], groups)
            out["wb_score"] = macro * 10 if macro is not None else out["wb_score_micro"]
            out["score"] = out["wb_score"] / 100
        else:
            def headline(idx: np.ndarray) -> float:
                return float(vals[idx].mean())

            by = weighted_groups([v * 100 for v in vals], groups)
            out["wb_reward"] = float(vals.mean()) * 100
            macro = self.macro(list(vals), groups)
            if macro is not None:
                out["wb_reward_macro"] = macro * 100
            out["outcomes"] = {name: int(np.sum(vals == r)) for r, name in OUTCOMES.items()}
            out["wb_reward_length_penalty"] = o.length_penalty
            out["score"] = out["wb_reward"] / 100
        if by:
            out["by_category"] = by
        ci = percentile_interval(headline, len(vals), rounds, level, seed)
        out["score_ci"] = [x / 10 for x in ci] if ci and o.mode == "score" else ci
        return out
