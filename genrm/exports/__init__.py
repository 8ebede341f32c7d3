"""Result files in the papers' own formats, so their scripts read the suite's judgments and
print its numbers (``export.format=<module here>`` on genrm.evaluate and genrm.score).

Each module exposes ``write(rows, folder, names) -> [paths]``: ``rows`` are this suite's
samples.jsonl rows of one benchmark (:class:`genrm.records.JudgedRow`), ``names`` an
:class:`ExportNames`. A new format is a new module; nothing else lists them.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

from genrm.records import JudgedRow
from plumbing.config.schema import Problems


@dataclass
class ExportSettings:
    format: Optional[str] = None  # a module of genrm/exports: ralign | rationalerm (null: none)
    dir: Optional[str] = None  # where the papers' folders go (default: <output_dir>/export)
    model: Optional[str] = None  # the GenRM's name in the file names (default: genrm.model; genrm.score: "genrm")
    metarm: Optional[str] = None  # the MetaRM's (default: metarm.model, or "none")

    def check(self) -> Problems:
        if self.format is not None and writer_of(self.format) is None:
            known = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
            return [("format", f"unknown export format {self.format!r}; known: {known}")]
        return []


@dataclass
class ExportNames:
    benchmark: str
    model: str  # the evaluated GenRM
    metarm: str = "none"  # the MetaRM that judged its rationales
    rules: Any = None  # the run's AtomicRules (how it read the matcher's answers)


def writer_of(fmt: str) -> Optional[Callable[..., List[Path]]]:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", fmt or ""):
        return None
    try:
        return getattr(importlib.import_module(f"genrm.exports.{fmt}"), "write", None)
    except ImportError:
        return None


def file_name_part(name: str) -> str:
    """A model or benchmark name as a file name part, as R-Align names its files (a hub id's
    "/" and runs of other characters become one "_")."""
    s = re.sub(r"\s+", "_", (name or "").strip().replace("/", "__").replace("\\", "__"))
    s = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z._-]+", "_", s)).strip("_")
    return s or "unknown"


def export(settings: ExportSettings, rows: Sequence[JudgedRow], default_dir: Path,
           names: ExportNames) -> List[Path]:
    if settings.format is None:
        return []
    write = writer_of(settings.format)
    assert write is not None  # checked with the config
    return write(rows, Path(settings.dir) if settings.dir else default_dir, names)
