"""Resolve a configured model to something loaders accept: a local directory or a hub id."""

from __future__ import annotations

from pathlib import Path

from plumbing.config.schema import ModelConfig


def resolve_model(cfg: ModelConfig) -> str:
    """Local path or hub id for ``cfg``; a tiny model is built here first if it is missing."""
    if cfg.tiny is not None:
        from plumbing.tiny_models import build_tiny_model

        return str(build_tiny_model(cfg.path, cfg.tiny))
    path = Path(cfg.path).expanduser()
    return str(path.resolve()) if path.exists() else cfg.path
