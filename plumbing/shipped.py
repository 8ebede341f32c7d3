"""Where the non-Python files the suite reads at run time live.

In a checkout, ``conf/`` and ``slurm/`` are top-level folders beside the packages. A wheel
ships them inside this package as ``plumbing/_conf`` and ``plumbing/_slurm`` (pyproject's
``package-dir`` mapping), so installing the suite puts no generic ``conf`` or ``slurm`` into
site-packages. Data files ship inside the package they belong to (``toy_world/assets``,
``downstream_eval/assets``): :func:`asset_path` finds them in a checkout and in an install alike.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """``plumbing/_<name>`` of an installed wheel, else the checkout's top-level ``<name>/``."""
    installed = PACKAGE / f"_{name}"
    return installed if installed.is_dir() else PACKAGE.parent / name


def asset_path(name: str) -> str:
    """Absolute path of a data file a package ships, named ``PACKAGE/PATH`` (PATH inside the
    folder of the importable top-level package PACKAGE, e.g. ``toy_world/assets/toy_train.jsonl``):
    configs name data by the package that owns it, so the shared code knows no data set.
    The package is located, not imported."""
    package, _, rel = name.partition("/")
    try:
        spec = importlib.util.find_spec(package) if package.isidentifier() and rel else None
    except (ImportError, ValueError):
        spec = None
    folders = [Path(f) for f in (spec.submodule_search_locations or [])] if spec is not None else []
    if not folders:
        raise FileNotFoundError(f"shipped asset {name!r}: {package!r} is no importable package "
                                "(name a shipped file PACKAGE/PATH, e.g. toy_world/assets/toy_train.jsonl)")
    for folder in folders:
        if (folder / rel).is_file():
            return str((folder / rel).resolve())
    raise FileNotFoundError(f"no shipped asset {rel!r} in package {package} ({folders[0]})")
