"""The shared package depends on no other package of the suite (issue 19, layering):
``plumbing`` imports no stage package (genrm, policy_rlhf, downstream_eval, analysis) nor a
domain package (toy_world), not at the top, not inside a function, and names none of their
modules as a string (``"genrm.evaluate"``, ``"pkg.mod:Class"``) for a later import; with
those packages unimportable, every module of ``plumbing`` still imports. The packages come
from pyproject's list, so a new one is covered without editing this test."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
SHARED = "plumbing"
PACKAGES = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
OTHERS = sorted({p.split(".")[0] for p in PACKAGES} - {SHARED})
# a whole string that is a dotted module path, optionally with :attr (what importlib or a registry imports)
MODULE_PATH = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_][\w.]*)?|([A-Za-z_]\w*):[A-Za-z_][\w.]*")


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` or a prefix of it of two or more parts is a module of the checkout
    (``genrm.evaluate.Foo`` is; ``genrm.model``, a config key, is not)."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return (REPO / parts[0] / "__init__.py").is_file()
    for n in range(len(parts), 1, -1):
        base = REPO.joinpath(*parts[:n])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def violations(source: str, where: str) -> List[str]:
    """Every import of another suite package in ``source``, and every string naming one of
    their modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = MODULE_PATH.fullmatch(node.value.strip())
            dotted = m and (m.group(1) or m.group(2))
            if dotted and dotted.split(".")[0] in OTHERS and is_module(dotted):
                found.append((node.lineno, f"{where}:{node.lineno}: names {node.value!r}"))
            continue
        found += [(node.lineno, f"{where}:{node.lineno}: imports {n}") for n in names if n.split(".")[0] in OTHERS]
    return [text for _, text in sorted(found)]


def test_the_checker_sees_every_way_of_depending():
    src = textwrap.dedent('''
        import genrm.prompts
        from analysis.collect import runs_table
        def later():
            from downstream_eval import run
            import importlib
            return importlib.import_module("policy_rlhf.train")
        TARGET = "toy_world.oracle:ToyOracleBackend"
        BY_CLASS_PATH = "genrm.rewards.outcome.OutcomeReward"
        FINE = ["genrm.model=/path", "genrm", "analysis", "a genrm.evaluate run", "plumbing.pipeline"]
    ''')
    got = violations(src, "x.py")
    assert [g.split(": ", 1)[1] for g in got] == [
        "imports genrm.prompts", "imports analysis.collect", "imports downstream_eval", "names 'policy_rlhf.train'",
        "names 'toy_world.oracle:ToyOracleBackend'", "names 'genrm.rewards.outcome.OutcomeReward'"], got


def test_the_shared_package_imports_and_names_no_other_suite_package():
    assert {"genrm", "policy_rlhf", "downstream_eval", "analysis", "toy_world"} <= set(OTHERS)
    found = [v for path in sorted((REPO / SHARED).rglob("*.py"))
             for v in violations(path.read_text(), str(path.relative_to(REPO)))]
    assert found == [], "plumbing depends on a stage or domain package:\n" + "\n".join(found)


def test_every_shared_module_imports_with_the_other_packages_absent(tmp_path):
    probe = textwrap.dedent(f'''
        import importlib, json, pkgutil, sys
        OTHERS = {OTHERS!r}
        tried = []

        class Absent:  # as if the stage and domain packages were not installed
            @classmethod
            def find_spec(cls, name, path=None, target=None):
                if name.split(".")[0] in OTHERS:
                    tried.append(name)
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Absent)
        import {SHARED}
        failed = {{}}
        for m in pkgutil.walk_packages({SHARED}.__path__, "{SHARED}."):
            try:
                importlib.import_module(m.name)
            except Exception as e:
                failed[m.name] = f"{{type(e).__name__}}: {{e}}"
        print(json.dumps({{"tried": tried, "failed": failed,
                          "loaded": sorted(n for n in sys.modules if n.split(".")[0] in OTHERS)}}))
    ''')
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"tried": [], "failed": {}, "loaded": []}, got
