"""Resolve a configured model to something loaders accept: a local directory or a hub id."""

from __future__ import annotations

from pathlib import Path

from plumbing.config.schema import ModelConfig
from plumbing.tags import CHECKPOINT


def resolve_model(cfg: ModelConfig, output_dir: str) -> str:
    """Local path or hub id for ``cfg``; a tiny model is built first only where it was asked for.

    ``tiny`` builds a model where the tiny builder wrote one before (same spec: reused) or
    at a path under the run's ``output_dir`` that holds no model yet (the tiny presets'
    default, ``${output_dir}/models/...``; a relative path is taken from the working folder).
    Any other path is taken as given, so a mistyped ``model.path=/ckpt`` fails to load
    (naming it) instead of evaluating a random model built there; a model the builder did
    not write (a checkpoint trained from a tiny one) is used."""
    path = Path(cfg.path).expanduser()
    if cfg.tiny is not None:
        from plumbing.tiny_models import SPEC_FILE, build_tiny_model

        ours = (path / SPEC_FILE).is_file()
        # nothing there yet (or a build cut short: no config.json), under the run's folder
        fresh = (not (path / "config.json").is_file()
                 and path.resolve().is_relative_to(Path(output_dir).expanduser().resolve()))
        if ours or fresh:
            return str(build_tiny_model(path, cfg.tiny))
    return str(path.resolve()) if path.exists() else cfg.path


RUN_PREFIX = "runs:/"


def resolve_run_ref(ref: str, tracking_uri: str) -> tuple:
    """(checkpoint path, run id) for ``runs:/<run id>`` (the run's tag ``checkpoint_path``, as
    training stages set it); (ref, None) for anything else (a path, a hub id, a served name)."""
    if not ref.startswith(RUN_PREFIX):
        return ref, None
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from plumbing.errors import SuiteError

    run_id = ref[len(RUN_PREFIX):].strip("/").split("/")[0]
    try:
        run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    except MlflowException as e:
        raise SuiteError(f"{ref}: no such MLflow run at {tracking_uri} ({str(e).splitlines()[0]})") from None
    path = run.data.tags.get(CHECKPOINT)
    if not path:
        raise SuiteError(f"{ref}: run {run_id} ({run.info.status}) has no checkpoint_path tag; "
                         "is it a finished training run?")
    return path, run_id
