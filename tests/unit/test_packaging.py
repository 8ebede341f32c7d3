"""What an install depends on: every third-party import is a declared requirement, pyproject
lists every package, the shipped files are found in a checkout and in an installed layout,
and `ralign --version`. (The built wheel itself is run in tests/integration/test_wheel.py.)"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Set

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES: List[str] = PYPROJECT["tool"]["setuptools"]["packages"]
MAPPED: Dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
SUITE = sorted({p.split(".")[0] for p in PACKAGES})


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_requirements(project: Mapping) -> Set[str]:
    """Normalized distribution names of the core dependencies and of every extra."""
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_norm(re.match(r"[A-Za-z0-9._-]+", r.strip()).group(0)) for r in reqs}


def _guarded(tree: ast.AST) -> Set[ast.AST]:
    """Import nodes inside a ``try`` that catches ImportError: optional, with a fallback."""
    out: Set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                h.type is not None and {n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)}
                & {"ImportError", "ModuleNotFoundError"} for h in node.handlers):
            out.update(n for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return out


def top_level_imports(files: Iterable[Path]) -> Dict[str, List[str]]:
    """Absolute, unguarded imports: top-level module -> ["file:line", ...]."""
    found: Dict[str, List[str]] = {}
    for f in files:
        tree = ast.parse(f.read_text(), str(f))
        guarded = _guarded(tree)
        for node in ast.walk(tree):
            if node in guarded:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{f}:{node.lineno}")
    return found


def undeclared(imports: Mapping[str, List[str]], declared: Set[str], suite: Iterable[str],
               dists: Mapping[str, List[str]]) -> Dict[str, List[str]]:
    """Imports neither stdlib, the suite's own, nor provided by a declared distribution. A
    module that is not installed here (a cluster-only extra) counts as declared when a
    requirement has its name."""
    out = {}
    for module, where in sorted(imports.items()):
        if module in sys.stdlib_module_names or module in suite:
            continue
        provided_by = {_norm(d) for d in dists.get(module, [])} or {_norm(module)}
        if not provided_by & declared:
            out[module] = where
    return out


def test_every_third_party_import_is_a_declared_requirement():
    files = [f for pkg in SUITE for f in (REPO / pkg).rglob("*.py")]
    imports = top_level_imports(files)
    assert {"jinja2", "openrlhf"} <= set(imports)  # lazy imports inside functions are seen too
    missing = undeclared(imports, declared_requirements(PYPROJECT["project"]), SUITE,
                         importlib.metadata.packages_distributions())
    assert not missing, ("imported but not declared in pyproject.toml (dependencies or an extra): "
                         + "; ".join(f"{m} ({', '.join(w[:3])})" for m, w in missing.items()))


def test_the_check_refuses_an_undeclared_import_and_allows_optional_ones(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("import json\nimport yaml\nfrom jinja2 import Environment\nfrom plumbing import data\n"
                   "try:\n    import tomli\nexcept ImportError:\n    tomli = None\n"
                   "def engine():\n    import vllm\n")
    imports = top_level_imports([src])
    assert set(imports) == {"json", "yaml", "jinja2", "plumbing", "vllm"}  # tomli is optional (guarded)
    dists = {"yaml": ["PyYAML"], "jinja2": ["Jinja2"]}  # vllm: not installed, declared by name
    assert undeclared(imports, {"pyyaml", "vllm"}, SUITE, dists) == {"jinja2": [f"{src}:3"]}
    assert undeclared(imports, {"pyyaml"}, SUITE, dists).keys() == {"jinja2", "vllm"}


def test_pyproject_lists_every_package_and_maps_the_shipped_folders():
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for top in SUITE for p in (REPO / top).rglob("__init__.py")}
    assert set(PACKAGES) - set(MAPPED) == on_disk, "update [tool.setuptools] packages in pyproject.toml"
    assert MAPPED == {"plumbing._conf": "conf", "plumbing._slurm": "slurm"}
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for pkg, patterns in data.items():
        root = REPO / MAPPED.get(pkg, pkg.replace(".", "/"))
        for pattern in patterns:
            assert list(root.glob(pattern)), f"package-data {pkg}: {pattern} matches nothing in {root}"
    # every file a package ships under assets/ is in its package-data (configs name them by
    # ${ralign.asset:...}: one left out breaks an installed wheel, not this checkout)
    for pkg, patterns in data.items():
        root = REPO / MAPPED.get(pkg, pkg.replace(".", "/"))
        covered = {p for pattern in patterns for p in root.glob(pattern)}
        left_out = [p.relative_to(REPO) for p in (root / "assets").rglob("*") if p.is_file() and p not in covered]
        assert not left_out, f"package-data {pkg} leaves out {left_out}"


def test_shipped_folders_in_a_checkout_and_in_an_installed_layout(tmp_path, monkeypatch):
    import plumbing.shipped as shipped
    from plumbing.config.hydra_app import conf_dir
    from plumbing.launch.slurm import TEMPLATE_DIR

    monkeypatch.delenv("RALIGN_CONF_DIR", raising=False)
    assert conf_dir() == REPO / "conf" and TEMPLATE_DIR == REPO / "slurm"  # this checkout
    site = tmp_path / "site-packages"
    (site / "plumbing" / "_conf").mkdir(parents=True)
    monkeypatch.setattr(shipped, "PACKAGE", site / "plumbing")
    assert conf_dir() == site / "plumbing" / "_conf"  # an installed wheel's copy
    assert shipped.shipped_dir("slurm") == site / "slurm"  # not shipped there: where a checkout has it
    monkeypatch.setenv("RALIGN_CONF_DIR", str(tmp_path))
    assert conf_dir() == tmp_path
    monkeypatch.setenv("RALIGN_CONF_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match="RALIGN_CONF_DIR"):
        conf_dir()


def test_ralign_version(capsys, monkeypatch):
    from plumbing.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ralign {importlib.metadata.version('ralign-suite')}\n"

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert main(["-V"]) == 0
    assert capsys.readouterr().out.startswith("ralign 0+unknown")
