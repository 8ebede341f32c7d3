"""Registries by name (LLM backends, GenRM rewards, downstream task kinds): a name maps to a
class, given as the class or as ``"package.module:Class"`` and imported on first use, so a
registry never imports heavy optional dependencies it is not asked for. A name with a colon
that is not registered is imported as it is, so a config can name a class of its own."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List


class Registry:
    def __init__(self, what: str, entries: Dict[str, Any]):
        self.what = what  # for the error: "unknown <what> 'x'"
        self._entries = dict(entries)

    def register(self, name: str) -> Callable[[Any], Any]:
        """Class decorator: ``@REGISTRY.register("name")``."""
        def deco(cls: Any) -> Any:
            self._entries[name] = cls
            return cls

        return deco

    def names(self) -> List[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        target = self._entries.get(name, name if ":" in name else None)
        if target is None:
            raise KeyError(f"unknown {self.what} {name!r}; known: {self.names()}")
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
        return target
