"""One skeleton for every RL training stage, one adapter per engine, generic over the reward.

A training stage (GenRM training, policy training) describes its job as a
:class:`TrainingJob`: the model it trains, the judges its reward calls, how it reads its
data and turns it into prompts, and how its reward is made in this process (TRL) or as the
module a cluster job imports (OpenRLHF). The engine named by ``engine._target_`` (an
:class:`Engine`: ``plumbing.engines.local.LocalEngine``, ``plumbing.engines.openrlhf.OpenRLHFEngine``)
runs it; neither knows which reward it carries.
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

Problems = List[Tuple[str, str]]


class TrainingJob(abc.ABC):
    """What an RL stage gives an engine. ``cfg`` is the stage config (output_dir, seed,
    dry_run, data, engine, algo, cluster, launch, warm_start, max_failure_rate)."""

    name: str = "train"  # the cluster job's name
    description: str = ""  # a line for the console and the job script

    def __init__(self, cfg: Any):
        self.cfg = cfg

    @property
    @abc.abstractmethod
    def model(self) -> Any:
        """The ModelConfig of the model trained."""

    @property
    def judges(self) -> Dict[str, Any]:
        """The judge roles the reward calls, with their LLM configs."""
        return {}

    @property
    def monitors(self) -> Dict[str, Any]:
        """Judge roles that only measure (their verdicts never reach the reward), with their
        LLM configs: opened like judges and handed to the reward with them, but never
        guarded: their failures are the job's to count, they never stop training."""
        return {}

    @property
    def tags(self) -> Dict[str, str]:
        """MLflow tags of the run besides the checkpoint."""
        return {}

    @abc.abstractmethod
    def load(self) -> List[Any]:
        """The training items (samples, prompts), read and checked."""

    def warm_start_rows(self, items: List[Any]) -> List[Dict[str, Any]]:
        """Rows for the supervised warm start (engine.local, ``warm_start.steps`` > 0)."""
        raise NotImplementedError(f"{type(self).__name__} has no warm start")

    @abc.abstractmethod
    def local_examples(self, items: List[Any]) -> List[Dict[str, Any]]:
        """TRL's training rows."""

    @abc.abstractmethod
    def local_reward(self, judges: Dict[str, Tuple[Any, Any]]) -> Callable[..., List[float]]:
        """TRL's ``reward_func``, given each judge role's opened (backend, sampling)."""

    @abc.abstractmethod
    def remote_rows(self, items: List[Any]) -> List[Dict[str, Any]]:
        """The cluster job's prompt file rows (``prompt``, ``label``)."""

    @abc.abstractmethod
    def remote_reward(self, job_dir: Path, judges: Dict[str, Any]) -> Tuple[Path, Dict[str, Any]]:
        """Write the module the cluster job imports for its reward, given each judge's
        settings as the job reaches it; return its path and the keyword of ``ppo_args``
        that names it (``reward_module`` or ``agent_module``)."""

    def summary(self, items: Optional[List[Any]]) -> Dict[str, Any]:
        """What the stage adds to summary.json."""
        return {}


class Engine(abc.ABC):
    """A training engine: runs a :class:`TrainingJob`. Declares the estimators it runs and
    whether its jobs are laid out over a cluster (a resource plan)."""

    name: str = ""
    estimators: Tuple[str, ...] = ()
    lays_out_cluster: bool = False

    def problems(self, cfg: Any, judges: Dict[str, Any]) -> Problems:
        """Problems of a stage config this engine would refuse at start (keys of the stage)."""
        return []

    @abc.abstractmethod
    def run(self, job: TrainingJob, tracker: Any) -> Dict[str, Any]:
        ...


def engine_problems(cfg: Any, judges: Dict[str, Any]) -> Problems:
    """What the stage's engine refuses of its config: an estimator it does not run, and its
    own rules (a layout, judges it cannot reach). Nothing when the engine itself is not
    found (``engine._target_``, reported by EngineConfig.check)."""
    from plumbing.components import locate

    try:
        cls = locate(cfg.engine._target_)
        if not (isinstance(cls, type) and issubclass(cls, Engine)):
            return []
        adapter = cls()
    except (ImportError, AttributeError, TypeError):
        return []
    if cfg.algo.estimator not in adapter.estimators:
        hint = " (TRL has no PPO trainer: use engine=openrlhf for gae)" if cfg.algo.estimator == "gae" else ""
        return [("algo.estimator", f"engine={cfg.engine.name} runs {list(adapter.estimators)}, "
                                   f"not {cfg.algo.estimator!r}{hint}")]
    return adapter.problems(cfg, judges)


def train(job: TrainingJob, tracker: Any) -> Dict[str, Any]:
    """Run a training stage's job on its engine; write and log summary.json."""
    cfg = job.cfg
    summary = job.cfg.engine.adapter().run(job, tracker)
    out = Path(cfg.output_dir)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if not cfg.dry_run:
        tracker.log_artifact(out / "summary.json")
    return summary
