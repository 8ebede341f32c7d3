"""Components: a pluggable thing (a GenRM reward, a downstream task kind, a data format, an
LLM backend) is one class in one module plus one YAML that names it.

The YAML gives the class as ``_target_`` (``package.module.Class`` as in Hydra and verl, or
``package.module:Class``) and its settings under ``params:``. The class declares a ``Params``
dataclass; one generic check (:meth:`ComponentConfig.check`) imports the class, checks it is
the kind of component the slot takes, and validates ``params`` against ``Params`` with the
same rules and messages as every other config (types, unknown keys, ``check()``, ranges),
so a problem reads ``reward.params.lambda_ap: must be >= 0``. There is no list of known
components: a class outside the suite is named the same way (it only has to be importable,
e.g. from a folder on ``PYTHONPATH``, with its YAML on Hydra's search path).

A component also declares what it needs and what it produces as class attributes that
stages read instead of checking names (a reward's ``needs``, a task's ``needs_sandbox``).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import MISSING, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

Problems = List[Tuple[str, str]]


@dataclass
class NoParams:
    """The params of a component that takes none."""


def locate(target: str) -> Any:
    """The object a ``_target_`` names: ``package.module.Class`` or ``package.module:Class``.
    Raises ImportError (module) or AttributeError (name) with a message that says which."""
    if ":" in target:
        module, _, attr = target.partition(":")
    else:
        module, _, attr = target.rpartition(".")
    if not module or not attr:
        raise ImportError(f"{target!r} is not a class path (package.module.Class)")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ImportError(f"cannot import {module!r} for {target!r} ({e.msg})") from None
    except Exception as e:  # a contributor module with a syntax error, or one that raises on import
        raise ImportError(f"importing {module!r} for {target!r} failed: {type(e).__name__}: {e}") from None
    try:
        obj = mod
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise AttributeError(f"module {module!r} has no {attr!r}") from None
    return obj


def params_of(cls: Any) -> type:
    """The dataclass a component's ``params`` must fit (``NoParams`` when it declares none)."""
    params = getattr(cls, "Params", None)
    return params if dataclasses.is_dataclass(params) else NoParams


def build_params(cls: Any, raw: Any) -> Tuple[Any, Problems]:
    """``raw`` (a mapping from YAML) as the component's typed ``Params``, checked like any
    config, every problem at once: (params object or None, problems keyed relative to
    ``params``)."""
    from plumbing.config.validate import check_tree

    schema = params_of(cls)
    known = [f.name for f in dataclasses.fields(schema)]
    node = OmegaConf.structured(schema)
    problems: Problems = []
    for key, value in dict(raw or {}).items():
        if key not in known:
            problems.append((f"params.{key}", f"{cls.__name__} takes no param {key!r}; it takes {known}"))
            continue
        try:
            node.merge_with({key: value})
        except OmegaConfBaseException as e:
            problems.append((f"params.{key}", str(e).split("\n")[0]))
    try:
        obj = OmegaConf.to_object(node)
    except OmegaConfBaseException as e:  # a required param not given
        key = getattr(e, "full_key", None) or "?"
        return None, problems + [(f"params.{key}", "is required (no value given)")]
    given_wrong = {k for k, _ in problems}
    problems += [(f"params.{k}", m) for k, m in check_tree(obj) if f"params.{k}" not in given_wrong]
    return (None if problems else obj), problems


@dataclass
class ComponentConfig:
    """A slot for a component: the class it names and that class's params. Subclasses set
    ``base`` (the class every component of the slot derives from) and may add fields every
    component of the slot shares."""

    _target_: str = MISSING
    params: Optional[Dict[str, Any]] = field(default_factory=dict)  # null: the class's defaults
    # the public name (the option's file name, set when composed); default: the class's ``name``
    name: Optional[str] = None

    base = object  # class attribute, not a config field

    def component(self) -> Any:
        return locate(self._target_)

    @property
    def label(self) -> str:
        """The name runs, tags and job names carry."""
        if self.name:
            return self.name
        try:
            cls = self.component()
        except (ImportError, AttributeError):
            return self._target_
        return getattr(cls, "name", "") or cls.__name__

    def typed_params(self) -> Any:
        obj, problems = build_params(self.component(), self.params)
        if problems:
            from plumbing.config.validate import ConfigError

            raise ConfigError(problems, f"{self._target_} params")
        return obj

    def check(self) -> Problems:
        try:
            cls = self.component()
        except (ImportError, AttributeError) as e:
            return [("_target_", str(e.args[0]) if e.args else str(e))]
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            return [("_target_", f"{self._target_} is not a {self.base.__module__}.{self.base.__qualname__}")]
        return build_params(cls, self.params)[1]


def fill_names(cfg: Any, choices: Dict[str, Optional[str]], overrides: Sequence[str] = ()) -> None:
    """Give each component chosen from a config group the option's file name as its public
    ``name`` (``reward=hybrid`` names it ``hybrid``), unless the config sets one or an override
    replaced its class (``reward._target_=...``: the option's name would claim a class that
    does not run; the class's own name serves). ``choices`` are Hydra's runtime choices
    (``group`` or ``group@package`` -> option)."""
    replaced = set()
    for o in overrides:
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
        if key.endswith("._target_") or value.lstrip().startswith("{"):  # not a group choice (reward=hybrid)
            replaced.add(key)
    for key, option in choices.items():
        if not option or key.startswith("hydra"):
            continue
        group, _, package = key.partition("@")
        path = (package or group).replace("/", ".")
        if {path, f"{path}._target_"} & replaced:
            continue
        node = OmegaConf.select(cfg, path, default=None)
        if OmegaConf.is_dict(node) and "_target_" in node and not node.get("name"):
            with open_dict(node):
                node.name = str(option).rsplit("/", 1)[-1]


def fill_params(obj: Any, data: Dict[str, Any]) -> Dict[str, Any]:
    """``data`` (a config as plain dicts) with each component's ``params`` completed by its
    ``Params`` defaults, from the typed config ``obj``: what a run records (config.yaml,
    MLflow params) and what its config hash covers, so a changed default is seen as a
    change. A component whose params do not build is left as given (its check reports it)."""
    from plumbing.config.validate import walk

    for path, node in walk(obj, ""):
        if not isinstance(node, ComponentConfig):
            continue
        try:
            typed = dataclasses.asdict(node.typed_params())
        except Exception:
            continue
        target = data
        for part in path.split(".") if path else []:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target["params"] = {**typed, **(target.get("params") or {})}
    return data
