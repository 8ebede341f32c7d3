"""Resolve a configured model to something loaders accept: a local directory or a hub id."""

from __future__ import annotations

from pathlib import Path

from plumbing.config.schema import ModelConfig


def resolve_model(cfg: ModelConfig) -> str:
    """Local path or hub id for ``cfg``; a tiny model is built here first if it is missing.

    A model at ``cfg.path`` that the tiny builder did not write (a checkpoint trained from a
    tiny model, say) is used as it is: the spec only says what to build where nothing is."""
    if cfg.tiny is not None:
        from plumbing.tiny_models import build_tiny_model, is_foreign_model

        if is_foreign_model(cfg.path):
            return str(Path(cfg.path).expanduser().resolve())
        return str(build_tiny_model(cfg.path, cfg.tiny))
    path = Path(cfg.path).expanduser()
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
    path = run.data.tags.get("checkpoint_path")
    if not path:
        raise SuiteError(f"{ref}: run {run_id} ({run.info.status}) has no checkpoint_path tag; "
                         "is it a finished training run?")
    return path, run_id
