"""Reading data sets (local files, or the hub) with errors that name file, line and field.

A data set's format is a component (:mod:`plumbing.components`): a :class:`DataFormat`
subclass named by its YAML's ``_target_``, its settings under ``params:`` checked against
its ``Params``. It declares the kind of item it ``produces`` (a stage takes only the kind it
reads), reads a file's raw records (``read``: JSONL, JSON or parquet by default; a format of
another file type, e.g. CSV, gives its own reader, no switch here to edit), and ``convert``
checks one raw record (raising :class:`FieldError`) and returns the stage's item (several as
:class:`Many`). :func:`load_records` applies it to every record and either stops at the first
bad one with an :class:`InputError` (``on_bad_record="error"``) or skips and counts bad records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from plumbing.components import NoParams, params_of
from plumbing.errors import SuiteError

class Many(list):
    """What ``convert`` returns when one raw record becomes several items."""


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


try:  # 2-3x faster than json on large files (a million records score in seconds)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a core dependency
    _loads = json.loads


def _json_error(line: bytes) -> str:
    try:
        json.loads(line)
    except json.JSONDecodeError as e:
        return f"invalid JSON: {e.msg} (column {e.colno})"
    except UnicodeDecodeError:
        return "invalid JSON: not UTF-8 text"
    return "invalid JSON"


Rows = Iterator[Tuple[int, Any, Optional[InputError]]]  # (line or row from 1, record, None) or (line, None, error)


def iter_raw(path: str | Path) -> Rows:
    """(line or row number from 1, parsed record, None) or (line, None, error) for bad JSON:
    a .parquet or .json (a list) file, else JSON lines."""
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
            raise InputError(path, e.lineno, "<json>", f"invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(data, list):
            raise InputError(path, 1, "<json>", "a .json file must hold a list of records")
        for i, rec in enumerate(data, start=1):
            yield i, rec, None
        return
    yield from iter_jsonl_range(path, 0, path.stat().st_size)


def iter_hub(hub_id: str, hub_file: Optional[str], split: str) -> Rows:
    """Rows of a hub data set (or a local folder laid out like one), numbered from 1."""
    from datasets import load_dataset

    source = f"hub:{hub_id}" + (f"/{hub_file}" if hub_file else "")
    try:
        rows = load_dataset(hub_id, data_files=hub_file, split=split) if hub_file else \
            load_dataset(hub_id, split=split)
    except Exception as e:  # offline, missing file, bad split: one clear message
        raise InputError(source, 0, "-", f"could not load ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    for i, row in enumerate(rows, start=1):
        yield i, row, None


def split_jsonl(path: str | Path, parts: int) -> List[Tuple[int, int]]:
    """Byte ranges [start, end) of a JSONL file, cut at line ends, for parallel readers."""
    size = Path(path).stat().st_size
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            fh.seek(max(size * k // parts, cuts[-1]))
            fh.readline()  # move to the start of the next line
            cuts.append(min(fh.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a] or [(0, size)]


def iter_jsonl_range(path: str | Path, start: int, end: int) -> Rows:
    """Like :func:`iter_raw` for the lines in bytes [start, end); line numbers count from 1
    at ``start`` (the caller adds the lines before it)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        pos, i = start, 0
        while pos < end:
            line = fh.readline()
            if not line:
                break
            pos += len(line)
            i += 1
            if not line.strip():
                continue
            try:
                yield i, _loads(line), None
            except ValueError:
                yield i, None, InputError(path, i, "<json>", _json_error(line))


def count_lines(path: str | Path, start: int, end: int) -> int:
    n = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(left, 1 << 24))
            if not block:
                break
            n += block.count(b"\n")
            left -= len(block)
    return n


class DataFormat:
    """A data set's format: what a stage's items are made from (subclass it; its YAML in
    ``conf/data/`` names the subclass as ``_target_``).

    Declares ``produces``, the kind of item ``convert`` returns (a stage takes only data sets
    of the kind it reads: ``pairwise``, ``policy_prompts``, ``chat_prompts``), and ``Params``,
    the dataclass its ``params:`` must fit (``self.params``)."""

    Params: type = NoParams
    produces: str = ""

    def __init__(self, params: Any = None):
        self.params = params_of(type(self))() if params is None else params

    def read(self, path: Path) -> Rows:
        """The raw records of a local file, numbered by line (or row) from 1; an unreadable
        record comes as (line, None, InputError). Default: JSONL, JSON (a list) or parquet."""
        return iter_raw(path)

    def convert(self, record: Dict[str, Any]) -> Any:
        """One raw record checked (:class:`FieldError` naming the field) and turned into the
        stage's item, or several as :class:`Many`."""
        raise NotImplementedError


def load_data(cfg: Any) -> Tuple[List[Any], LoadReport]:
    """Load a configured data set (:class:`~plumbing.config.schema.DataConfig`) through its format:
    a local file through the format's reader, a hub data set through ``datasets``."""
    fmt = cfg.build()
    if cfg.path:
        path = Path(cfg.path)
        if not path.is_file():
            raise InputError(path, 0, "-", "file not found")
        return load_records(path, fmt.convert, cfg.on_bad_record, cfg.limit, rows=fmt.read(path))
    source = f"hub:{cfg.hub_id}" + (f"/{cfg.hub_file}" if cfg.hub_file else "")
    return load_records(source, fmt.convert, cfg.on_bad_record, cfg.limit,
                        rows=iter_hub(cfg.hub_id, cfg.hub_file, cfg.split))


def load_records(
    path: str | Path,
    convert: Callable[[Dict[str, Any]], Any],
    on_bad_record: str = "error",
    limit: Optional[int] = None,
    rows: Optional[Rows] = None,
) -> Tuple[List[Any], LoadReport]:
    """Check and convert every record (``rows`` default: the lines of ``path``); ``convert``
    returns one item, or several as :class:`Many`. See the module docstring for ``on_bad_record``."""
    report = LoadReport(str(path))
    out: List[Any] = []
    for line, raw, err in (iter_raw(path) if rows is None else rows):
        if err is None:
            try:
                if not isinstance(raw, dict):
                    raise FieldError("<record>", f"expected an object, got {type(raw).__name__}")
                item = convert(raw)
                out.extend(item if isinstance(item, Many) else [item])
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
            del out[limit:]
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


ROLE_ALIASES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
                "bot": "assistant", "model": "assistant", "system": "system"}


def chat_messages(value: Any, name: str = "messages", last_user: bool = False) -> List[Dict[str, str]]:
    """Check a chat as [{role, content}, ...] (ShareGPT's {from, value} and role aliases such
    as human/gpt accepted); with ``last_user`` the last turn must be the user's."""
    if not isinstance(value, list) or not value:
        raise FieldError(name, "expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise FieldError(f"{name}[{i}]", "expected an object with role and content")
        raw_role = m.get("role", m.get("from"))
        role, content = ROLE_ALIASES.get(str(raw_role).lower()), m.get("content", m.get("value"))
        if role is None:
            raise FieldError(f"{name}[{i}].role", f"must be system, user or assistant, got {raw_role!r}")
        if not isinstance(content, str):
            raise FieldError(f"{name}[{i}].content", "must be text")
        out.append({"role": role, "content": content})
    if last_user and out[-1]["role"] != "user":
        raise FieldError(f"{name}[{len(out) - 1}].role", "the last turn must be the user's")
    return out


def data_sources(data: Dict[str, Any]) -> List[str]:
    """Where each named data set is read from, for a dry run that reads none of them."""
    return [f"{name}: {d.path or f'hub {d.hub_id}' + (f' ({d.hub_file})' if d.hub_file else '')}"
            + (f" [{d.split}]" if not d.path else "") for name, d in data.items()]
