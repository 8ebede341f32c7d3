"""Where the non-Python files the suite reads at run time live.

In a checkout, ``conf/`` and ``slurm/`` are top-level folders beside the packages. A wheel
ships them inside this package as ``plumbing/_conf`` and ``plumbing/_slurm`` (pyproject's
``package-dir`` mapping), so installing the suite puts no generic ``conf`` or ``slurm`` into
site-packages. ``plumbing/assets`` is in the package in both cases.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """``plumbing/_<name>`` of an installed wheel, else the checkout's top-level ``<name>/``."""
    installed = PACKAGE / f"_{name}"
    return installed if installed.is_dir() else PACKAGE.parent / name
