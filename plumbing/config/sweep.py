"""A Hydra multirun's shared MLflow state, made once before its jobs start.

Jobs of a sweep share one MLflow store and one parent run (``join_sweep``). Started in
parallel (``hydra/launcher=ralign_local`` or Slurm array jobs), each job would otherwise create
the new store and the parent run at the same moment: sqlite migrations racing on one file
(``table _alembic_tmp_... already exists``) and parent runs made and deleted. The callback
below does both in the process that launches the sweep, before any job exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_id(name: str, sweep_dir: Path) -> str:
    """The tag that names a sweep's runs: the config's name and the sweep folder."""
    return f"{name}-{Path(sweep_dir).expanduser().resolve().name}"


class SweepTracking(Callback):
    """``hydra.callbacks``: create the sweep's store and parent run at multirun start."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from plumbing.tracking import sweep_parent, tracking_uri

        tracking = config.get("tracking")
        if tracking is None or not tracking.get("enabled", True) or config.get("dry_run", False):
            return
        sweep_dir = Path(config.hydra.sweep.dir).expanduser().resolve()
        uri = tracking_uri(tracking.get("uri"), sweep_dir)
        sweep_parent(uri, tracking.experiment, tracking.get("sweep_id") or sweep_id(config.name, sweep_dir))
