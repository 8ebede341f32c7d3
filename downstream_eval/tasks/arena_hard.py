"""Arena-Hard-v2 on its own protocol (lmarena/arena-hard-auto, ``gen_judgment.py`` and
``show_result.py``), in code of our own.

Each answer is judged against the benchmark's baseline answer twice: game 1 shows the
baseline as assistant A and the policy as B, game 2 the other way round. The judge ends with
one of five verdicts, ``[[A>>B]]``, ``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]``, ``[[B>>A]]`` (read
as arena-hard reads them: the last ``[[..]]`` label of the upper-cased answer, else the last
``[..]``; the mirrored spellings ``B<A``, ``A<<B``, ``B=A`` ... are the same verdicts). A game
is a battle won (1), tied (0.5) or lost (0) by the policy; a strong verdict (``>>``) counts as
``strong_weight`` (3) battles. An answer whose two games do not both give a verdict adds no
battle (arena-hard drops such judgments) and is counted as a judge failure.

The score is the Bradley-Terry win rate against the baseline: a logistic regression of the
battle outcomes on the policy-minus-baseline indicator (one column of ones, there being one
policy per run), read as sigmoid(coefficient). Without covariates this is the battles' mean
exactly. With ``style_control`` the battle's style differences are covariates, as
arena-hard's: length ``(t_p - t_b) / (t_p + t_b)`` (t: tokens) and, for headers, list items
and bold spans, markdown density ``d = count / (t + 1)`` as ``(d_p - d_b) / (d_p + d_b + 1)``,
code blocks removed before counting markdown; each covariate is divided by its standard
deviation. Arena-hard also centres the covariates on the mean over every model's battles, so
its controlled scores are read at the pool's average style difference; with one policy that
average is the policy's own and the control would vanish, so the controlled win rate here is
read at equal style (covariates 0). Tokens are counted as words and punctuation marks
(arena-hard uses tiktoken's gpt-4o encoding, which is not installed; the features are ratios,
so the unit matters little). The interval is arena-hard's: battles resampled with
replacement ``bootstrap_rounds`` (100) times, the ``interval`` (90 %) quantiles.

Categories: v2's ``hard_prompt`` (subcategories coding, math) and ``creative_writing`` have
their own baselines (o3-mini-2025-01-31; gemini-2.0-flash-001) and their own judge prompts
(the judge answers the prompt itself first, except for ``compare_only_categories``). The
headline is on ``score_categories`` (the official leaderboard: hard_prompt); every category's
win rate is reported (``by_category``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from downstream_eval.tasks import Doc, Grade, Task, flatten, regroup
from downstream_eval.tasks.judge_protocol import ProtocolJudgeTask, answers_by_id, judge_record, percentile_interval
from downstream_eval.tasks.pairwise import field_at
from genrm.records import conversation
from plumbing.data import FieldError

PROMPT_VERSION = "arena-hard-v2/ralign-1"  # bump with any change to the judge's prompt below

_CRITERIA = (
    "Judge the answers on whether they are helpful (they do what the prompt asks; where the prompt is "
    "ambiguous or open to several readings, asking the user to clarify is better than answering on a guess), "
    "relevant (every part bears on the request) and concise (clear, without padding or needless length). "
    "Where it matters, weigh creativity and novelty, and note important information that either answer "
    "leaves out.\n\n"
    "After your explanation, end with exactly one verdict label:\n"
    "1. [[A>>B]]: assistant A is significantly better\n"
    "2. [[A>B]]: assistant A is slightly better\n"
    "3. [[A=B]]: a tie, the answers are about as good\n"
    "4. [[B>A]]: assistant B is slightly better\n"
    "5. [[B>>A]]: assistant B is significantly better\n\n"
    "For example: \"Final verdict: assistant B is slightly better, [[B>A]]\".")
SYSTEM_SOLVE_FIRST = (
    "You are judging two AI assistants' answers to the same user prompt, to decide which answer serves the "
    "user better.\n\nBefore judging, write your own answer to the prompt. Then compare each assistant's answer "
    "with yours, and point out and correct any mistakes or inaccurate information in them.\n\n" + _CRITERIA)
SYSTEM_COMPARE = (
    "You are judging two AI assistants' answers to the same user prompt, to decide which answer serves the "
    "user better.\n\nCompare the two answers with each other, and point out and correct any mistakes or "
    "inaccurate information in them.\n\n" + _CRITERIA)

# verdict as written (upper-cased) -> (the five-level verdict, A's outcome)
VERDICTS: Dict[str, Tuple[str, float]] = {
    "A>>B": ("A>>B", 1.0), "B<<A": ("A>>B", 1.0),
    "A>B": ("A>B", 1.0), "B<A": ("A>B", 1.0),
    "A=B": ("A=B", 0.5), "B=A": ("A=B", 0.5),
    "B>A": ("B>A", 0.0), "A<B": ("B>A", 0.0),
    "B>>A": ("B>>A", 0.0), "A<<B": ("B>>A", 0.0),
}
_LABELS = (re.compile(r"\[\[([AB<>=]+)\]\]"), re.compile(r"\[([AB<>=]+)\]"))
STYLE_FEATURES = ("length", "markdown")


def parse_verdict(text: str) -> Optional[str]:
    """The five-level verdict of a judge's answer (thinking removed): the last ``[[label]]``,
    else the last ``[label]``; None when there is none or the label is not a verdict
    (``[[A>>>B]]``, ``[[AB]]``)."""
    from genrm.parsing import strip_thinking

    answer = strip_thinking(text or "").upper()
    for pattern in _LABELS:
        found = [m for m in pattern.findall(answer) if m]
        if found:
            verdict = VERDICTS.get(found[-1])
            return verdict[0] if verdict else None
    return None


def battles(game1: str, game2: str, strong_weight: int = 3) -> List[float]:
    """The policy's battle outcomes from its two games (five-level verdicts): in game 1 the
    baseline is A, in game 2 the policy is A; a strong verdict is ``strong_weight`` battles."""
    out: List[float] = []
    for verdict, policy_is_a in ((game1, False), (game2, True)):
        a = VERDICTS[verdict][1]
        outcome = a if policy_is_a else 1.0 - a
        out += [outcome] * (strong_weight if ">>" in verdict else 1)
    return out


# ---------------------------------------------------------------------------- style
_CODE = re.compile(r"```([^`]*)```")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_MARKDOWN = {
    "header": re.compile(r"^#{1,6}\s", re.MULTILINE),
    "list": re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE),
    "bold": re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__"),
}


def style_counts(text: str) -> Dict[str, int]:
    """Tokens of the whole answer, and headers, list items and bold spans outside code blocks."""
    prose = _CODE.sub("``````", text)
    return {"tokens": len(_TOKEN.findall(text)), **{k: len(p.findall(prose)) for k, p in _MARKDOWN.items()}}


def style_features(policy: Dict[str, int], baseline: Dict[str, int], which: Sequence[str]) -> List[float]:
    """Arena-hard's style differences of one battle: relative length, then the relative
    markdown densities (headers, lists, bold)."""
    out: List[float] = []
    tp, tb = policy["tokens"], baseline["tokens"]
    if "length" in which:
        out.append((tp - tb) / (tp + tb) if tp + tb else 0.0)
    if "markdown" in which:
        for k in ("header", "list", "bold"):
            dp, db = policy[k] / (tp + 1), baseline[k] / (tb + 1)
            out.append((dp - db) / (dp + db + 1))
    return out


# ---------------------------------------------------------------------------- Bradley-Terry
def fit_logistic(X: np.ndarray, y: np.ndarray, ridge: float = 1e-8, iters: int = 100) -> np.ndarray:
    """Coefficients maximising the Bernoulli log-likelihood of outcomes ``y`` in [0, 1] (a tie
    is 0.5, a soft label, as arena-hard's binary cross-entropy takes it) under sigmoid(X b), by
    Newton's method with step halving; ``ridge`` only keeps separable data finite."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    b = np.zeros(X.shape[1])

    def loss(b: np.ndarray) -> float:
        z = X @ b
        return float(np.sum(np.logaddexp(0, z) - y * z) + ridge * b @ b / 2)

    current = loss(b)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ b)))
        grad = X.T @ (p - y) + ridge * b
        hess = (X.T * (p * (1 - p))) @ X + ridge * np.eye(len(b))
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-10 and loss(b - t * step) > current + 1e-12:
            t /= 2
        b = b - t * step
        new = loss(b)
        if abs(current - new) < 1e-12 or np.abs(t * step).max() < 1e-10:
            break
        current = new
    return b


def bt_win_rate(outcomes: Sequence[float], covariates: Optional[np.ndarray] = None) -> float:
    """The Bradley-Terry probability that the policy beats the baseline: sigmoid of the
    policy's coefficient, read at covariates 0. Without covariates the maximum-likelihood
    value is the outcomes' mean, returned exactly."""
    y = np.asarray(outcomes, float)
    if not len(y):
        return float("nan")
    if covariates is None or not np.asarray(covariates).shape[-1]:
        return float(y.mean())
    X = np.column_stack([np.ones(len(y)), covariates])
    return float(1 / (1 + np.exp(-fit_logistic(X, y)[0])))


def scaled(features: np.ndarray) -> np.ndarray:
    """Each covariate divided by its standard deviation (a constant one is left out)."""
    sd = features.std(axis=0) if len(features) else np.zeros(features.shape[1])
    keep = sd > 0
    return features[:, keep] / sd[keep]


# ---------------------------------------------------------------------------- the kind
BASELINE = "__arena_baseline__"


@dataclass
class ArenaHardParams:
    question_field: str = "prompt"  # the user prompt (text, or turns ending with the user's)
    id_field: str = "uid"
    category_field: str = "category"  # selects the baseline and the judge prompt
    baseline_field: str = "messages.-1.content.answer"  # in a baseline file's record (or the question's)
    baseline_path: Optional[str] = None  # baseline answers of every category without its own
    baseline_paths: Dict[str, str] = field(default_factory=dict)  # category -> its baseline's answers
    baseline_id_field: Optional[str] = None  # the id in those files; null: id_field
    compare_only_categories: List[str] = field(default_factory=lambda: ["creative_writing"])
    score_categories: Optional[List[str]] = None  # the headline's categories; null: all
    strong_weight: int = field(default=3, metadata={"range": (1, 100)})  # battles per >> verdict
    style_control: List[str] = field(default_factory=list)  # [length], [markdown] or both
    bootstrap_rounds: int = field(default=100, metadata={"range": (0, 100000)})
    interval: float = field(default=0.90, metadata={"range": (0.5, 0.999)})
    parse_retries: int = field(default=2, metadata={"range": (0, 10)})  # re-asks of a verdict-less judge

    def check(self) -> List[Tuple[str, str]]:
        bad = [f for f in self.style_control if f not in STYLE_FEATURES]
        return [("style_control", f"unknown feature(s) {bad}; choose from {list(STYLE_FEATURES)}")] if bad else []


class ArenaHardTask(ProtocolJudgeTask):
    Params = ArenaHardParams
    made_of_grades = Task.made_of_grades + ("win_rate", "by_category", "battles")
    prompt_name = PROMPT_VERSION

    def judge_prompt(self) -> str:
        """Both categories' judge prompts on placeholders."""
        import json

        doc = Doc("probe", [], "", {"context": [{"role": "user", "content": "{prompt}"}], "category": None})
        return json.dumps([SYSTEM_COMPARE, self.judge_messages(doc, "{answer A}", "{answer B}")], sort_keys=True)

    def raw_records(self) -> List[Tuple[int, Dict[str, Any]]]:
        rows = super().raw_records()
        o = self.params
        join = o.baseline_id_field or o.id_field
        files = {p: answers_by_id(p, join) for p in {o.baseline_path, *o.baseline_paths.values()} if p}
        out = []
        for line, rec in rows:
            path = o.baseline_paths.get(str(field_at(rec, o.category_field)), o.baseline_path)
            found = files[path].get(str(field_at(rec, o.id_field))) if path else rec
            out.append((line, {**rec, BASELINE: (path, found)}))
        return out

    def doc(self, rec: Dict[str, Any], index: int) -> Doc:
        o = self.params
        question = field_at(rec, o.question_field)
        if question is None:
            raise FieldError(o.question_field, "missing")
        context = conversation(question, o.question_field)
        path, source = rec.get(BASELINE, (None, rec))
        if source is None:
            raise FieldError(o.id_field, f"no baseline answer with this id in {path}")
        baseline = field_at(source, o.baseline_field)
        if not isinstance(baseline, str) or not baseline.strip():
            raise FieldError(o.baseline_field, "missing or empty (the baseline answer)")
        category = field_at(rec, o.category_field)
        rid = str(field_at(rec, o.id_field) or f"{self.cfg.name}-{index}")
        system = [{"role": "system", "content": self.cfg.system_prompt}] if self.cfg.system_prompt else []
        return Doc(rid, system + context, baseline, {"context": context, "category": category})

    def judge_messages(self, doc: Doc, a: str, b: str) -> List[Dict[str, str]]:
        ctx = doc.meta["context"]
        prompt = ctx[0]["content"] if len(ctx) == 1 else "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in ctx)
        system = SYSTEM_COMPARE if doc.meta["category"] in self.params.compare_only_categories else SYSTEM_SOLVE_FIRST
        user = (f"<user_prompt>\n{prompt}\n</user_prompt>\n\n<assistant_A_answer>\n{a}\n</assistant_A_answer>\n\n"
                f"<assistant_B_answer>\n{b}\n</assistant_B_answer>")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def grade(self, items: Sequence[tuple]) -> List[List[Grade]]:
        from genrm.parsing import strip_thinking
        from plumbing.llm.parsed import complete_parsed
        from plumbing.llm.types import ChatRequest, SamplingParams

        o = self.params
        sampling = SamplingParams.from_config(self.ctx["judge_sampling"])
        jobs = flatten(items)
        requests = []
        for doc, out in jobs:
            base = strip_thinking(doc.target)
            requests += [ChatRequest.of(self.judge_messages(doc, base, out), sampling),  # game 1: baseline is A
                         ChatRequest.of(self.judge_messages(doc, out, base), sampling)]  # game 2: policy is A
        answers = complete_parsed(self.ctx["judge"], requests, parse_verdict, o.parse_retries)
        who = judge_record(self.ctx, self.judge_prompt_version())
        grades = []
        for k, (doc, out) in enumerate(jobs):
            g1, g2 = answers[2 * k], answers[2 * k + 1]
            detail = {"games": [g1.value, g2.value], "judge_status": [g1.status, g2.status],
                      "category": doc.meta["category"], "style": [style_counts(out), style_counts(doc.target)],
                      "judge_raw": [g1.raw, g2.raw], **who}
            if not (g1.ok and g2.ok):
                detail["battles"] = []
                grades.append(Grade(0.5, None, "no_verdict", detail))
                continue
            detail["battles"] = outcomes = battles(g1.value, g2.value, o.strong_weight)
            score = sum(outcomes) / len(outcomes)
            verdict = "win" if score > 0.5 else "loss" if score < 0.5 else "tie"
            grades.append(Grade(score, f"{g1.value}|{g2.value}", verdict, detail))
        return regroup(items, grades)

    def battle_table(self, grades: Sequence[Grade]) -> Tuple[np.ndarray, np.ndarray, List[Any]]:
        """(outcomes, scaled style covariates, category) per battle."""
        y, feats, cats = [], [], []
        for g in grades:
            policy, base = g.detail.get("style") or ({}, {})
            for outcome in g.detail.get("battles", []):
                y.append(outcome)
                feats.append(style_features(policy, base, self.params.style_control))
                cats.append(g.detail.get("category"))
        none = dict.fromkeys(("tokens", "header", "list", "bold"), 0)
        width = len(style_features(none, none, self.params.style_control))  # also with no battle at all
        covariates = scaled(np.array(feats, float).reshape(len(y), width))
        return np.array(y, float), covariates, cats

    def win_rate_and_interval(self, y: np.ndarray, covariates: Optional[np.ndarray]) -> Tuple[float, Any]:
        o = self.params
        seed = getattr(self.ctx.get("bootstrap"), "seed", 0)
        rate = bt_win_rate(y, covariates)
        ci = percentile_interval(lambda i: bt_win_rate(y[i], None if covariates is None else covariates[i]),
                                 len(y), o.bootstrap_rounds, o.interval, seed)
        return rate, ci

    def summarize(self, grades: Sequence[Sequence[Grade]]) -> Dict[str, Any]:
        out = super().summarize(grades)
        o = self.params
        flat = [g for gs in grades for g in gs]
        out.update(self.judge_summary(flat))
        y, cov, cats = self.battle_table(flat)
        chosen = np.array([o.score_categories is None or c in o.score_categories for c in cats], bool)
        out["battles"] = int(chosen.sum())
        if not chosen.any():
            out["score"], out["score_ci"] = None, None
            return out
        out["win_rate"], out["win_rate_ci"] = self.win_rate_and_interval(y[chosen], None)
        out["score"], out["score_ci"] = out["win_rate"], out["win_rate_ci"]
        if o.style_control:
            sc = self.win_rate_and_interval(y[chosen], cov[chosen])
            out["win_rate_style_controlled"], out["win_rate_style_controlled_ci"] = sc
            out["score"], out["score_ci"] = sc
        out["score_ci_level"] = o.interval
        by = {}
        for c in sorted({str(c) for c in cats}):
            mask = np.array([str(x) == c for x in cats])
            by[c] = bt_win_rate(y[mask], cov[mask] if o.style_control else None)
        out["by_category"] = by
        return out
