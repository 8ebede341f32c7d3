"""Reading record files (JSONL, JSON, parquet) with errors that name file, line and field.

A stage declares how one record is checked and converted (a function that raises
:class:`FieldError`); :func:`load_records` applies it to every record and either stops at
the first bad one with an :class:`InputError` (``on_bad_record="error"``) or skips and
counts bad records (``"skip"``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from plumbing.errors import SuiteError

T = TypeVar("T")
_ASSETS = Path(__file__).resolve().parent / "assets"


def asset_path(name: str) -> str:
    """Absolute path of a data file shipped with the suite (``plumbing/assets``)."""
    path = _ASSETS / name
    if not path.exists():
        raise FileNotFoundError(f"no shipped asset {name!r} in {_ASSETS}")
    return str(path)


class FieldError(ValueError):
    """A record's field is missing or wrong; raised by record checkers."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class InputError(SuiteError):
    """A bad input file: names the file, the line (or row) and the field."""

    def __init__(self, path: str | Path, line: int, field: str, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: field '{field}': {message}")


@dataclass
class LoadReport:
    path: str
    read: int = 0
    skipped: int = 0
    problems: List[str] = field(default_factory=list)  # the first few, for the summary

    def as_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "read": self.read, "skipped": self.skipped, "problems": self.problems}


def iter_raw(path: str | Path) -> Iterator[Tuple[int, Any, Optional[InputError]]]:
    """(line or row number from 1, parsed record, None) or (line, None, error) for bad JSON."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, 0, "-", "file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        for i, row in enumerate(frame.to_dict(orient="records"), start=1):
            yield i, row, None
        return
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(path, e.lineno, "<json>", f"invalid JSON: {e.msg}") from None
        if not isinstance(data, list):
            raise InputError(path, 1, "<json>", "a .json file must hold a list of records")
        for i, rec in enumerate(data, start=1):
            yield i, rec, None
        return
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line), None
            except json.JSONDecodeError as e:
                yield i, None, InputError(path, i, "<json>", f"invalid JSON: {e.msg} (column {e.colno})")


def load_records(
    path: str | Path,
    convert: Callable[[Dict[str, Any]], T],
    on_bad_record: str = "error",
    limit: Optional[int] = None,
) -> Tuple[List[T], LoadReport]:
    """Check and convert every record; see the module docstring for ``on_bad_record``."""
    report = LoadReport(str(path))
    out: List[T] = []
    for line, raw, err in iter_raw(path):
        if err is None:
            try:
                if not isinstance(raw, dict):
                    raise FieldError("<record>", f"expected an object, got {type(raw).__name__}")
                out.append(convert(raw))
                report.read += 1
            except FieldError as e:
                err = InputError(path, line, e.field, str(e).split(": ", 1)[-1])
        if err is not None:
            if on_bad_record != "skip":
                raise err
            report.skipped += 1
            if len(report.problems) < 20:
                report.problems.append(str(err))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        extra = f" ({report.skipped} bad records skipped)" if report.skipped else ""
        raise InputError(path, 0, "-", "no usable records" + extra)
    return out, report


# ---------------------------------------------------------------------------- field helpers
def require(rec: Dict[str, Any], name: str, kind: type | Tuple[type, ...] = str, allow_empty: bool = False) -> Any:
    if name not in rec or rec[name] is None:
        raise FieldError(name, "missing")
    value = rec[name]
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise FieldError(name, f"expected {want}, got {type(value).__name__}")
    if not allow_empty and hasattr(value, "__len__") and len(value) == 0:
        raise FieldError(name, "is empty")
    return value


def chat_messages(value: Any, name: str = "messages") -> List[Dict[str, str]]:
    """Check an OpenAI-style message list: [{role, content}, ...]."""
    if not isinstance(value, list) or not value:
        raise FieldError(name, "expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise FieldError(f"{name}[{i}]", "expected an object with role and content")
        role, content = m.get("role"), m.get("content")
        if role not in ("system", "user", "assistant"):
            raise FieldError(f"{name}[{i}].role", f"must be system, user or assistant, got {role!r}")
        if not isinstance(content, str):
            raise FieldError(f"{name}[{i}].content", "must be text")
        out.append({"role": role, "content": content})
    return out
