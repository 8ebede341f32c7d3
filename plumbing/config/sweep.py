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


NAMING = {"name", "experiment", "tracking.experiment", "tracking.sweep_id"}  # what the callback's config cannot know


class SweepTracking(Callback):
    """``hydra.callbacks``: create the sweep's store and parent run at multirun start. It sees
    the sweep's base config, not each job's: overrides that name the jobs (``NAMING``) leave
    the parent runs to the jobs (each name, its own), only the store is made here."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from plumbing.tracking import seed_sqlite_store, sweep_parent, tracking_uri

        tracking = config.get("tracking")
        if tracking is None or not tracking.get("enabled", True) or config.get("dry_run", False):
            return
        sweep_dir = Path(config.hydra.sweep.dir).expanduser().resolve()
        uri = tracking_uri(tracking.get("uri"), sweep_dir)
        seed_sqlite_store(uri)
        swept = {o.split("=", 1)[0].lstrip("+~") for o in config.hydra.overrides.task}
        if not swept & NAMING:  # else each job's name (or experiment) is its own: its jobs make their parents
            sweep_parent(uri, tracking.experiment, tracking.get("sweep_id") or sweep_id(config.name, sweep_dir))
