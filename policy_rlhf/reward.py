"""A pairwise GenRM as a scalar reward for policy optimisation (DESIGN.md "Reward for policy
training").

Reference mode: the policy response y is compared with a reference response y_ref for the
same prompt in both orders (cancelling position bias); each order gives a win of 1 (GenRM
prefers y), 0 (prefers y_ref) or ``neutral`` (judge failure or unparsable verdict, counted);
the reward is the mean, in [0, 1] (0.5 = split), optionally mapped to [-1, 1].
Group mode: the n samples of one prompt are compared with each other (round-robin, both
orders) and each sample's reward is its mean win.
Thinking blocks are removed from a response before it is judged; an empty or truncated
response gets ``floor`` without a judge call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from genrm.judging import judge
from genrm.parsing import strip_thinking
from genrm.prompts import JUDGE_SYSTEM
from genrm.records import PairwiseSample
from plumbing.config.schema import Problems, check_choice
from plumbing.llm.types import LLMBackend, SamplingParams

DIAGNOSTICS = ("win_rate", "judge_failures", "unparsable", "swap_consistent", "floor", "comparisons")


@dataclass
class PairwiseRewardConfig:
    mode: str = "reference"  # reference | group
    neutral: float = 0.5  # the win of a comparison the judge could not decide (failure, no verdict)
    floor: float = 0.0  # reward of an empty or truncated response (in the [0, 1] scale)
    penalize_truncated: bool = True
    scale: str = "unit"  # unit: [0, 1] | symmetric: 2r - 1 in [-1, 1]

    def scaled(self, r: float) -> float:
        """A reward in [0, 1] on the configured scale."""
        return 2 * r - 1 if self.scale == "symmetric" else r

    @property
    def failure(self) -> float:
        """What a sample gets when scoring itself fails: neutral, on the configured scale."""
        return self.scaled(self.neutral)
    group_opponents: int = 0  # group mode: opponents per sample (0 = all others)

    def check(self) -> Problems:
        p: Problems = []
        check_choice(p, "mode", self.mode, ("reference", "group"))
        check_choice(p, "scale", self.scale, ("unit", "symmetric"))
        for key in ("neutral", "floor"):
            if not 0 <= getattr(self, key) <= 1:
                p.append((key, "must be in [0, 1] (the unit scale; scale=symmetric maps it)"))
        return p


@dataclass
class PolicyRollout:
    context: List[Dict[str, str]]  # the conversation the policy answered
    response: str
    reference: Optional[str] = None  # reference mode
    truncated: bool = False
    group: Optional[str] = None  # group mode: samples with the same key are compared


@dataclass
class PolicyReward:
    reward: float
    diagnostics: Dict[str, float] = field(default_factory=dict)


class PairwiseReward:
    def __init__(self, cfg: PairwiseRewardConfig, genrm: LLMBackend, sampling: SamplingParams,
                 system: Optional[str] = JUDGE_SYSTEM):
        self.cfg, self.genrm, self.sampling, self.system = cfg, genrm, sampling, system

    def _scaled(self, r: float) -> float:
        return self.cfg.scaled(r)

    def _empty(self, text: str, truncated: bool) -> bool:
        return not text.strip() or (truncated and self.cfg.penalize_truncated)

    def _duels(self, duels: Sequence[Tuple[List[Dict[str, str]], str, str]]) -> List[Tuple[float, bool, int, int]]:
        """Judge (context, mine, theirs) in both orders; per duel: (mean win, consistent,
        judge failures, unparsable verdicts)."""
        samples = [PairwiseSample(f"d{k}", ctx, mine, theirs) for k, (ctx, mine, theirs) in enumerate(duels)]
        out = []
        for j in judge(self.genrm, samples, self.sampling, swap=True, system=self.system):
            wins, failures, unparsable = [], 0, 0
            for pred, err in ((j.pred, j.error), (j.pred_swapped, j.error_swapped)):
                if err:
                    failures += 1
                elif pred is None:
                    unparsable += 1
                wins.append(self.cfg.neutral if pred is None else float(pred == "A"))  # "A" is mine
            out.append((sum(wins) / 2, bool(j.consistent), failures, unparsable))
        return out

    def score(self, rollouts: Sequence[PolicyRollout]) -> List[PolicyReward]:
        texts = [strip_thinking(r.response) for r in rollouts]
        results = [PolicyReward(0.0, {k: 0.0 for k in DIAGNOSTICS}) for _ in rollouts]
        live = [i for i, r in enumerate(rollouts) if not self._empty(texts[i], r.truncated)]
        for i in set(range(len(rollouts))) - set(live):
            results[i].reward = self._scaled(self.cfg.floor)
            results[i].diagnostics["floor"] = 1.0
        if self.cfg.mode == "group":
            self._score_groups(rollouts, texts, live, results)
        else:
            self._score_reference(rollouts, texts, live, results)
        return results

    def _record(self, res: PolicyReward, outcomes: Sequence[Tuple[float, bool, int, int]]) -> None:
        d = res.diagnostics
        n = len(outcomes)
        win = sum(o[0] for o in outcomes) / n
        res.reward = self._scaled(win)
        d.update(win_rate=win, comparisons=float(n), swap_consistent=sum(o[1] for o in outcomes) / n,
                 judge_failures=float(sum(o[2] for o in outcomes)), unparsable=float(sum(o[3] for o in outcomes)))

    def _score_reference(self, rollouts, texts, live, results) -> None:
        missing = [i for i in live if not rollouts[i].reference]
        if missing:
            raise ValueError(f"reference mode needs a reference response for every prompt ({len(missing)} missing)")
        duels = [(rollouts[i].context, texts[i], strip_thinking(rollouts[i].reference or "")) for i in live]
        for i, outcome in zip(live, self._duels(duels)):
            self._record(results[i], [outcome])

    def _score_groups(self, rollouts, texts, live, results) -> None:
        groups: Dict[str, List[int]] = {}
        for i in live:
            groups.setdefault(str(rollouts[i].group), []).append(i)
        pairs: List[Tuple[int, int]] = []
        seen = set()
        for members in groups.values():
            k = self.cfg.group_opponents or len(members) - 1
            for pos, i in enumerate(members):  # round-robin: each sample meets its next k siblings
                for step in range(1, min(k, len(members) - 1) + 1):
                    j = members[(pos + step) % len(members)]
                    if frozenset((i, j)) not in seen:
                        seen.add(frozenset((i, j)))
                        pairs.append((i, j))
        outcomes = self._duels([(rollouts[i].context, texts[i], texts[j]) for i, j in pairs])
        per: Dict[int, List[Tuple[float, bool, int, int]]] = {}
        for (i, j), (win, consistent, fail, unp) in zip(pairs, outcomes):
            per.setdefault(i, []).append((win, consistent, fail, unp))
            per.setdefault(j, []).append((1 - win, consistent, fail, unp))
        for i in live:
            if i in per:
                self._record(results[i], per[i])
            else:  # alone in its group: nothing to compare with
                results[i].reward = self._scaled(self.cfg.neutral)


__all__ = ["PairwiseReward", "PairwiseRewardConfig", "PolicyRollout", "PolicyReward", "DIAGNOSTICS"]
