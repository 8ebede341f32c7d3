"""Defaults in one place: the dataclasses (and each component's Params) hold every default;
YAML holds only what differs from them; the composed default config of every stage is
checked in (docs/reference_configs/), so a changed default shows in review."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, List

import pytest
import yaml

from plumbing.config.hydra_app import conf_dir

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import render_configs  # noqa: E402

CONF = conf_dir()


@pytest.mark.parametrize("stage", render_configs.stages())
def test_the_checked_in_reference_config_is_the_composed_default(stage):
    path = render_configs.OUT / f"{stage}.yaml"
    assert path.exists(), f"{path} is missing: run python scripts/render_configs.py"
    assert render_configs.render(stage) == path.read_text(), (
        f"the composed default config of {stage} changed: review the diff of {path.relative_to(REPO)} "
        "after python scripts/render_configs.py")


def test_the_checked_in_component_options_are_current():
    """Each component option's params with its class's defaults: a changed Params default of a
    reward, backend, task kind or format no stage chooses by default shows in review too."""
    path = render_configs.OUT / "components.yaml"
    assert render_configs.components() == path.read_text(), "run python scripts/render_configs.py and review the diff"
    assert "metarm_failure_reward" in path.read_text() and "lambda_ap" in path.read_text()


def _default(schema: Any) -> Any:
    """An instance of a dataclass with its defaults (required fields left unset)."""
    kwargs = {f.name: None for f in dataclasses.fields(schema)
              if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return schema(**kwargs)


def restated(node: Any, default: Any, path: str) -> List[str]:
    """Keys of a YAML mapping whose value equals the dataclass default it would override."""
    from plumbing.components import ComponentConfig, locate, params_of

    out: List[str] = []
    if not isinstance(node, dict) or not dataclasses.is_dataclass(default):
        return out
    fields = {f.name: f for f in dataclasses.fields(default)}
    for key, value in node.items():
        if key not in fields or key in ("_target_", "name", "stage"):
            continue
        here = getattr(default, key)
        where = f"{path}.{key}" if path else key
        if key == "params" and isinstance(default, ComponentConfig) and "_target_" in node:
            try:
                out += restated(value, params_of(locate(node["_target_"]))(), where)
            except (ImportError, AttributeError):
                pass
        elif dataclasses.is_dataclass(here):
            out += restated(value, here, where)
        elif isinstance(here, dict) and isinstance(value, dict) and not here:
            continue  # a mapping of named entries (data sets, tasks): checked through their own files
        elif value == here and not (isinstance(value, str) and ("${" in value or value == "???")):
            out.append(where)
    return out


def _group_files():
    from downstream_eval.tasks import TaskConfig
    from genrm.rewards import RewardConfig
    from plumbing.config.schema import GROUPS

    schemas = {**GROUPS, "task": TaskConfig, "reward": RewardConfig}
    for group, schema in sorted(schemas.items()):
        for path in sorted((CONF / group).glob("*.yaml")):
            yield pytest.param(path, schema, id=f"{group}/{path.name}")


@pytest.mark.parametrize("path,schema", list(_group_files()))
def test_a_group_option_holds_only_what_differs_from_the_defaults(path, schema):
    node = yaml.safe_load(path.read_text()) or {}
    node.pop("defaults", None)
    same = restated(node, _default(schema), "")
    assert not same, f"{path.relative_to(REPO)} restates dataclass defaults: {same}"


def _root_files():
    from plumbing.config.hydra_app import STAGES, stage_module

    for stage in sorted(STAGES):
        yield pytest.param(CONF / f"{stage}.yaml", stage_module(stage).SCHEMA, id=f"{stage}.yaml")


def own_keys(node: dict) -> dict:
    """A root config's own keys: not those of a group its defaults list chooses (a value
    there overrides the group option's, not the dataclass default)."""
    groups = set()
    for d in node.pop("defaults", None) or []:
        if isinstance(d, dict):
            for k in d:
                groups.add(k.split("@")[-1] if "@" in k else k.split("/")[0])
    return {k: v for k, v in node.items() if k not in groups}


@pytest.mark.parametrize("path,schema", list(_root_files()))
def test_a_stage_root_holds_only_what_differs_from_the_defaults(path, schema):
    same = restated(own_keys(yaml.safe_load(path.read_text()) or {}), _default(schema), "")
    assert not same, f"{path.relative_to(REPO)} restates dataclass defaults: {same}"
