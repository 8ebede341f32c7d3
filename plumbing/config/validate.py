"""Turn a composed DictConfig into a checked dataclass tree, or a ConfigError that names keys."""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Iterable, Iterator, List, Tuple, Type, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from plumbing.errors import SuiteError

T = TypeVar("T")


class ConfigError(SuiteError):
    """A configuration problem; ``problems`` holds (dotted key, message) pairs."""

    def __init__(self, problems: List[Tuple[str, str]], source: str = "config"):
        self.problems = problems
        self.source = source
        lines = [f"{source}: {len(problems)} problem(s)"]
        lines += [f"  - {key}: {msg}" for key, msg in problems]
        super().__init__("\n".join(lines))


def walk(obj: Any, prefix: str) -> Iterator[Tuple[str, Any]]:
    """Yield (dotted path, node) for every dataclass node in ``obj``."""
    if dataclasses.is_dataclass(obj):
        yield prefix, obj
        for f in dataclasses.fields(obj):
            yield from walk(getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from walk(v, f"{prefix}[{i}]")



def range_problems(node: Any, reported: Iterable[str] = ()) -> List[Tuple[str, str]]:
    """Every number of a config node is finite and in its field's ``range`` metadata ((low,
    high), inclusive), by default >= 0: a count, a size, a rate, a seed. A negative sample
    count or seed is refused here, not after the paid calls. Keys in ``reported`` already
    have a problem from the node's own check."""
    out = []
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or f.name in reported:
            continue
        lo, hi = f.metadata.get("range", (0, math.inf))
        if not math.isfinite(v):
            out.append((f.name, f"must be a finite number, got {v}"))
        elif not lo <= v <= hi:
            bounds = f">= {lo:g}" if hi == math.inf else f"<= {hi:g}" if lo == -math.inf else f"in [{lo:g}, {hi:g}]"
            out.append((f.name, f"must be {bounds}, got {v}"))
    return out


def check_tree(obj: Any) -> List[Tuple[str, str]]:
    """Run ``check()`` of every dataclass node and the range check of its numbers; return
    problems with full dotted keys."""
    problems: List[Tuple[str, str]] = []
    for path, node in walk(obj, ""):
        check = getattr(node, "check", None)
        own = list(check()) if callable(check) else []
        own += range_problems(node, {k for k, _ in own})
        for key, msg in own:
            problems.append((f"{path}.{key}" if path else key, msg))
    return problems


def _required_hint(schema: Any, key: str) -> str:
    """What to give for a required value, from the ``give`` metadata of the stage field that
    holds it (``field(metadata={"give": {"model": "..."}})``)."""

    head, _, rest = key.partition(".")
    for f in dataclasses.fields(schema) if dataclasses.is_dataclass(schema) else ():
        if f.name == head:
            hint = f.metadata.get("give", {}).get(rest or head)
            return f": give {key}=<{hint}>" if hint else ""
    return ""

def unknown_key(kind: Any, key: str) -> str:
    """Why ``key`` is refused in a ``kind`` dataclass, with the field it may mean."""
    close = difflib.get_close_matches(key, sorted(f.name for f in dataclasses.fields(kind)), n=1)
    return f"unknown key (not a field of {kind.__name__})" + (f"; did you mean {close[0]!r}?" if close else "")


def unknown_keys(node: Any, prefix: str = "") -> List[Tuple[str, str]]:
    """Keys of a composed config that no dataclass field takes. Hydra lets ``+key=value`` add
    any key, and a structured merge keeps it; it would be ignored silently (a typo's value
    never used), so it is refused like Hydra's own unknown keys."""
    out: List[Tuple[str, str]] = []
    if not OmegaConf.is_dict(node):
        return out
    kind = OmegaConf.get_type(node)
    fields = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
    for key in node.keys():
        where = f"{prefix}.{key}" if prefix else str(key)
        if fields is not None and key not in fields:
            out.append((where, unknown_key(kind, str(key))))
            continue
        value = node._get_node(key)
        if value is None or value._is_none() or value._is_missing() or value._is_interpolation():
            continue
        if OmegaConf.is_dict(value):
            out += unknown_keys(value, where)
        elif OmegaConf.is_list(value):
            for i, item in enumerate(value):
                out += unknown_keys(item, f"{where}[{i}]")
    return out


def unknown_entry_keys(node: Any, schema: Any, prefix: str = "") -> List[Tuple[str, str]]:
    """Keys no field takes inside the entries of ``schema``'s maps of typed entries (a
    pipeline's steps, a stage's data sets) in a config composed with those maps open
    (``hydra_app.open_entries``): every one, where a structured merge stops at the first."""
    import typing

    out: List[Tuple[str, str]] = []
    if not OmegaConf.is_dict(node) or not dataclasses.is_dataclass(schema):
        return out
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name not in node:
            continue
        value, hint = node._get_node(f.name), hints.get(f.name)
        if value is None or value._is_none() or value._is_missing() or not OmegaConf.is_dict(value):
            continue
        where = f"{prefix}.{f.name}" if prefix else f.name
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
            for key in value.keys():
                entry = value._get_node(key)
                fields = {g.name for g in dataclasses.fields(args[1])}
                if OmegaConf.is_dict(entry) and OmegaConf.get_type(entry) is not args[1]:
                    out += [(f"{where}.{key}.{k}", unknown_key(args[1], str(k))) for k in entry.keys() if k not in fields]
                    out += unknown_entry_keys(entry, args[1], f"{where}.{key}")
        else:
            kind = next((a for a in [hint, *args] if dataclasses.is_dataclass(a)), None)
            if kind is not None:
                out += unknown_entry_keys(value, kind, where)
    return out


def validate(cfg: DictConfig, schema: Type[T], source: str = "config", checks: bool = True) -> T:
    """Resolve ``cfg`` into ``schema`` (types, required fields), then run the semantic checks
    (``checks=False``: the typed object only, for tools that inspect a refused config)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).split("\n")[0]
        if type(e).__name__ == "MissingMandatoryValue":
            msg = "is required (no value given)" + _required_hint(schema, key)
        raise ConfigError([(key, msg)], source) from None
    problems = unknown_keys(merged) + check_tree(obj) if checks else []
    if problems:
        raise ConfigError(problems, source)
    return obj  # type: ignore[return-value]
