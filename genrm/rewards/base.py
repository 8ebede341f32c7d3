"""What every GenRM-training reward shares: rollouts in, rewards and diagnostics out.

Pure parts (verdict parsing, label check) run here; judges (MetaRM, MetaJudge) are
backends handed in by the engine adapter. A reward never raises for one rollout: a judge
failure gives the configured failure reward and a counter in the diagnostics.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from genrm.parsing import parse_verdict
from genrm.records import PairwiseSample
from plumbing.config.schema import ANY
from plumbing.llm.types import SamplingParams

DIAGNOSTICS = ("format_fail", "label_correct", "metarm_called", "metarm_correct", "metarm_incorrect",
               "metarm_call_fail", "metarm_parse_fail", "ap")


@dataclass
class Judge:
    """A judge model a reward calls (MetaRM, MetaJudge): its backend and how to sample it."""

    backend: Any  # plumbing.llm.types.LLMBackend
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=1024))


@dataclass
class Rollout:
    """One GenRM output for one training sample (responses in the order the GenRM saw them)."""

    completion: str
    sample: PairwiseSample


@dataclass
class RewardResult:
    reward: float
    pred: Optional[str] = None  # the parsed verdict
    diagnostics: Dict[str, float] = field(default_factory=dict)


@dataclass
class RewardParams:
    """What every reward takes (a reward's own ``Params`` extends it)."""

    # the reward of a rollout whose verdict does not parse (counted as format_fail)
    format_fail_reward: float = field(default=0.0, metadata={"range": ANY})


class GenRMReward(abc.ABC):
    """A GenRM-training reward component (``conf/reward/<name>.yaml`` names the class as
    ``_target_``, its settings under ``params:`` fit ``Params``). ``score(rollouts)`` returns
    one RewardResult per rollout, in order."""

    Params = RewardParams
    name: str = ""
    needs: tuple = ()  # judge roles the reward calls: "metarm", "metajudge"
    needs_fields: tuple = ()  # fields of the training samples it reads (PairwiseSample), e.g. gt_checklist
    produces: tuple = DIAGNOSTICS  # the diagnostics it puts on results, logged per step as rates
    # rationale signals its own judge measures (genrm.dynamics: rationale_correct, checklist_ap),
    # read from its results instead of asking the monitor
    measures: tuple = ()

    def __init__(self, params: Any, judges: Optional[Dict[str, Judge]] = None):
        self.cfg = params  # an instance of the class's Params
        self.judges = judges or {}

    @classmethod
    def from_config(cls, params: Any, judges: Optional[Dict[str, Judge]] = None) -> "GenRMReward":
        missing = [r for r in cls.needs if (judges or {}).get(r) is None]
        if missing:
            raise ValueError(f"reward {cls.name or cls.__name__!r} needs a {', '.join(missing)} backend")
        return cls(params, judges)

    def outcome(self, rollouts: Sequence[Rollout]) -> List[RewardResult]:
        """The verdict part every reward starts from: parse, compare with the golden label."""
        out = []
        for r in rollouts:
            pred = parse_verdict(r.completion)
            diag = {k: 0.0 for k in DIAGNOSTICS}
            if pred is None:
                diag["format_fail"] = 1.0
                out.append(RewardResult(self.cfg.format_fail_reward, None, diag))
                continue
            correct = pred == r.sample.gt_label
            diag["label_correct"] = float(correct)
            out.append(RewardResult(1.0 if correct else 0.0, pred, diag))
        return out

    @abc.abstractmethod
    def score(self, rollouts: Sequence[Rollout]) -> List[RewardResult]:
        ...


