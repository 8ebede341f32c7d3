"""Every config in conf/ composes and validates; bad configs fail naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from downstream_eval.tasks import TaskConfig
from plumbing.config.hydra_app import STAGES, compose, conf_dir
from genrm.rewards import RewardConfig
from plumbing.config.schema import GROUPS
from plumbing.config.validate import ConfigError, check_tree

CONF = conf_dir()
# Combinations a root refuses on purpose, with the key its error names.
REFUSED = {
    ("genrm_train", "algo", "ppo"): "algo.estimator",  # PPO needs a critic: engine=openrlhf, not the default local
    ("policy_train", "algo", "ppo"): "algo.estimator",
    # the default GenRM is a `transformers serve` the stage starts; an OpenRLHF job starts vllm serve
    ("policy_train", "engine", "openrlhf"): "genrm.serve.launcher",
}
# Values only a user can give (a model to judge with, an input file); the test supplies them.
ROOT_BASE = {"pipeline": ["experiment=smoke"], "genrm_eval": ["genrm.model=/m"], "genrm_score": ["input=/x.jsonl"],
             "correlate": ["input=/x.csv", "x=[a]"], "compare": ["mlflow.experiment=[e]"],
             "seeds": ["mlflow.experiment=[e]", "lower=[a]"],
             "policy_train": ["genrm.model=/m"],
             "downstream_eval": ["llm@judge=openai", "judge.model=/m", "judge.base_url=http://127.0.0.1:9/v1"]}
# A reward that calls a judge needs one configured.
JUDGE_OF_REWARD = {"ralign": "metarm", "hybrid": "metajudge"}


def _user_values(key: str, option: str) -> list:
    """A backend chosen for a role needs its model (and an endpoint for `openai`)."""
    group, _, package = key.partition("@")
    if group == "reward" and option in JUDGE_OF_REWARD:
        role = JUDGE_OF_REWARD[option]
        return [f"llm@{role}=openai", f"{role}.model=/m", f"{role}.base_url=http://127.0.0.1:9/v1"]
    if group != "llm":
        return []
    pkg = package or "llm"
    return [f"{pkg}.model=/m"] + ([f"{pkg}.base_url=http://127.0.0.1:9/v1"] if option == "openai" else [])


def _choices(stage: str) -> dict:
    """group(@package) -> option, as Hydra chose them for the root config of ``stage``."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from plumbing.config.hydra_app import load_stage

    load_stage(stage)  # registers the schema
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = hcompose(config_name=stage, return_hydra_config=True)
    GlobalHydra.instance().clear()
    return {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/")}


def _groups_of(stage: str) -> list:
    """Group keys a root composes; `data` and `task` are chosen as lists, which Hydra does not list in its choices."""
    import dataclasses

    from plumbing.config.hydra_app import load_stage

    keys = list(_choices(stage))
    fields = {f.name for f in dataclasses.fields(load_stage(stage).SCHEMA)}
    keys += [group for group, field in (("data", "data"), ("task", "tasks")) if field in fields]
    return keys


def _root_group_cases():
    for stage in STAGES:
        for key in _groups_of(stage):
            group = key.split("@")[0]
            if group == "experiment":
                continue
            for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
                yield pytest.param(stage, key, option, id=f"{stage}:{key}={option}")


def _compose_option(stage, key, option):
    base = [o for o in ROOT_BASE.get(stage, []) if o.split("=")[0] != key]  # the option under test wins
    choice = f"[{option}]" if key == "task" else option  # tasks are chosen as a list, also in a suite
    overrides = [*base, f"{key}={choice}", "output_dir=/tmp/ralign-config-test",
                 *_user_values(key, option)]
    return compose(stage, overrides)


def _format_refusal(err: ConfigError, option: str) -> bool:
    """A stage refusing a data set of another format (chat prompts are no GenRM benchmark)."""
    return all(k == f"data.{option}._target_" for k, _ in err.problems)


@pytest.mark.parametrize("stage,key,option", list(_root_group_cases()))
def test_every_group_option_composes_into_every_root_that_uses_the_group(stage, key, option):
    group = key.split("@")[0]
    if (stage, group, option) in REFUSED:
        with pytest.raises(ConfigError) as err:
            _compose_option(stage, key, option)
        assert any(k == REFUSED[stage, group, option] for k, _ in err.value.problems)
        return
    try:
        obj, cfg = _compose_option(stage, key, option)
    except ConfigError as err:
        assert group == "data" and _format_refusal(err, option), err
        return
    assert obj.stage == stage
    assert OmegaConf.select(cfg, "output_dir") == "/tmp/ralign-config-test"


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "data").glob("*.yaml")))
def test_every_data_set_is_accepted_by_some_stage(option):
    users = [s for s in STAGES if "data" in _groups_of(s)]
    accepted = []
    for stage in users:
        try:
            _compose_option(stage, "data", option)
            accepted.append(stage)
        except ConfigError as err:
            assert _format_refusal(err, option), err
    assert accepted, f"no stage takes data={option}"


def _presets():
    for path in sorted((CONF / "experiment").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        yield pytest.param(path.stem, data.get("stage", "pipeline"), id=path.stem)


# Presets that leave a value to the user (the GenRM a policy trains against).
PRESET_USER_VALUES = {"policy_train": ["genrm.model=/ckpt/genrm"], "genrm_eval": ["genrm.model=/ckpt/genrm"]}


@pytest.mark.parametrize("preset,stage", list(_presets()))
def test_every_experiment_preset_validates_against_its_stage(preset, stage):
    assert stage in STAGES, f"conf/experiment/{preset}.yaml names unknown stage {stage!r}"
    overrides = [f"experiment={preset}", "output_dir=/tmp/ralign-config-test"]
    try:
        obj, _ = compose(stage, overrides)
    except ConfigError as err:  # only a value the preset leaves open on purpose may be missing
        assert all(msg.startswith("is required") for _, msg in err.problems), err
        obj, _ = compose(stage, overrides + PRESET_USER_VALUES[stage])
    assert obj.name == preset or obj.name  # presets name their experiment
    if stage == "pipeline":
        for name, step in obj.graph().steps.items():  # each step's own config validates too (matrix written out)
            sub, _ = compose(step.stage, [*step.overrides, f"output_dir=/tmp/ralign-config-test/{name}"])
            assert sub.stage == step.stage


# Groups whose files are one node of a stage's config (a suite is a _global_ list of tasks,
# covered by composing it above).
NODE_GROUPS = {**GROUPS, "task": TaskConfig, "reward": RewardConfig}


@pytest.mark.parametrize("path", sorted(p for g in NODE_GROUPS for p in (CONF / g).glob("*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_group_file_fits_its_schema(path: Path):
    schema = NODE_GROUPS[path.parent.name]
    # Group files may refer to root keys (${output_dir}, ${seed}); give them a root to resolve in.
    root = OmegaConf.create({"output_dir": "/tmp/x", "seed": 0, "name": "t"})
    root.node = OmegaConf.structured(schema)
    cfg = OmegaConf.merge(root, {"node": OmegaConf.load(path)}).node  # unknown keys, types
    if not OmegaConf.missing_keys(cfg):
        assert check_tree(OmegaConf.to_object(cfg)) == []


def test_every_yaml_file_in_conf_is_covered_by_these_tests():
    known_dirs = set(NODE_GROUPS) | {"experiment", "base", "hydra", "suite"}
    assert all((CONF / f"{stage}.yaml").is_file() for stage in STAGES), "a stage in conf/stages.yaml has no root config"
    for path in CONF.rglob("*.yaml"):
        rel = path.relative_to(CONF)
        if rel.name == "stages.yaml":
            continue  # the stage table (STAGES)
        if len(rel.parts) == 1:
            assert path.stem in STAGES, f"root config {rel} has no stage in conf/stages.yaml"
        else:
            assert rel.parts[0] in known_dirs, f"{rel}: group {rel.parts[0]!r} is not in schema.GROUPS"


def test_default_output_dir_is_a_timestamped_folder_under_outputs():
    obj, _ = compose("preflight", [])
    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_preflight", obj.output_dir), obj.output_dir


@pytest.mark.parametrize(
    "override,key",
    [
        ("no_such_key=1", "no_such_key"),
        ("n_requests=abc", "n_requests"),
        ("llm.no_such_field=1", "llm.no_such_field"),
        ("tracking.enabled=maybe", "tracking.enabled"),
    ],
)
def test_unknown_key_or_wrong_type_names_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        compose("preflight", [override])
    assert key in str(err.value)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["llm.concurrency=0"], "llm.concurrency"),
        (["llm._target_=nope.Backend"], "llm._target_"),
        (["llm=transformers", "llm.params.batch_size=0"], "llm.params.batch_size"),  # the backend's own param
        (["llm.sampling.top_p=1.5"], "llm.sampling.top_p"),
        (["cluster.slurm.time=soon"], "cluster.slurm.time"),
        (["llm=openai"], "llm.base_url"),  # required, no value given
        (["llm=openai", "llm.base_url=http://x/v1", "llm.model=m", "llm.api_key=a", "llm.api_key_env=B"], "llm.api_key"),
    ],
)
def test_semantic_checks_name_the_full_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        compose("preflight", overrides)
    assert any(k == key for k, _ in err.value.problems), err.value.problems


def test_a_preset_for_another_stage_is_refused_with_a_hint():
    with pytest.raises(ConfigError) as err:
        compose("preflight", ["experiment=smoke"])
    assert "is a preset for stage 'pipeline', not 'preflight'" in str(err.value)
    assert "ralign run experiment=smoke" in str(err.value)


def test_pipeline_rejects_unknown_stage_missing_dependency_and_cycles():
    base = ["experiment=smoke", "output_dir=/tmp/x"]
    with pytest.raises(ConfigError) as err:
        compose("pipeline", base + ["steps.preflight.stage=nope"])
    assert ("steps.preflight.stage" in str(err.value))
    with pytest.raises(ConfigError) as err:
        compose("pipeline", base + ["steps.preflight.after=[ghost]"])
    assert "steps.preflight.after" in str(err.value)
    from plumbing.pipeline import PipelineConfig, PipelineStep

    cyclic = PipelineConfig(output_dir="/tmp/x", steps={"b": PipelineStep("preflight", after=["c"]),
                                                       "c": PipelineStep("preflight", after=["b"])})
    assert any("cycle" in msg for _, msg in check_tree(cyclic))


def test_cli_exits_non_zero_and_names_the_key(cli, python):
    bad_type = cli([python, "-m", "plumbing.preflight", "n_requests=abc"])
    assert bad_type.returncode == 2 and "n_requests" in bad_type.stderr  # Hydra's own refusal: exit 2 too
    unknown = cli([python, "-m", "genrm.evaluate", "no_such_key=1"])
    assert unknown.returncode == 2 and "no_such_key" in unknown.stderr
    bad_value = cli([python, "-m", "plumbing.preflight", "llm.concurrency=-3", "output_dir=/tmp/ralign-bad"])
    assert bad_value.returncode == 2
    assert "llm.concurrency" in bad_value.stderr and "Traceback" not in bad_value.stderr


def test_pipeline_checks_step_references_and_slurm_keys():
    from plumbing.pipeline import PipelineStep

    obj, _ = compose("pipeline", ["experiment=smoke", "cluster=slurm"])
    obj.steps["b"] = PipelineStep(stage="preflight", overrides=["model.path=@run:nope"], slurm={"gpus": 2})
    problems = dict(obj.check())
    assert "nope" in problems["steps.b.overrides"] and "steps.b.slurm.gpus" in problems  # the reference is in overrides
    obj.steps["b"] = PipelineStep(stage="preflight", overrides=["model.path=@dir:preflight"], slurm={"gpus_per_node": 2})
    assert obj.check() == [] and obj.steps["b"].needs() == ["preflight"]


def test_preflight_dry_run_plans_without_building_or_tracking(tmp_path):
    from plumbing.config.hydra_app import execute, finalize

    obj, cfg = finalize(*compose("preflight", [f"output_dir={tmp_path}", "dry_run=true"]))
    summary = execute("preflight", obj, cfg)
    assert summary["plan"]["server_command"].split()[1:3] == ["serve", str(tmp_path / "models" / "tiny-qwen3")]
    assert summary["mlflow_run_id"] is None
    assert not (tmp_path / "models").exists() and not (tmp_path / "mlflow.db").exists()


def _numbers(node, prefix=""):
    """(dotted key, owner, field) of every number in a typed config tree."""
    import dataclasses

    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            key = f"{prefix}{f.name}"
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield key, node, f
            else:
                yield from _numbers(v, key + ".")
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _numbers(v, f"{prefix}{k}.")


STAGE_VALUES = {"genrm_eval": ["genrm.model=m"], "genrm_score": ["input=x.jsonl"], "policy_train": ["genrm.model=m"],
                "correlate": ["input=t.csv", "x=[a]"], "compare": ["mlflow.experiment=[e]"],
                "seeds": ["mlflow.experiment=[e]", "higher=[m]"], "pipeline": ["experiment=smoke"],
                "downstream_eval": [], "genrm_train": [], "preflight": []}


@pytest.mark.parametrize("stage", sorted(STAGE_VALUES))
def test_every_number_of_every_stage_has_a_checked_range(stage):
    """Each numeric setting, set below its range (or to inf/nan), is refused naming its key:
    no setting reaches the work unchecked (a negative sample count, seed or limit)."""
    import dataclasses
    import math

    from plumbing.config.validate import check_tree

    obj, _ = compose(stage, STAGE_VALUES[stage], validate_config=False)
    found = list(_numbers(obj))
    assert found
    for key, owner, f in found:
        lo = f.metadata.get("range", (0, math.inf))[0]
        good = getattr(owner, f.name)
        for bad in ([lo - 7] if lo > -math.inf else []) + [math.inf, math.nan]:
            setattr(owner, f.name, bad)
            assert any(k == key for k, _ in check_tree(obj)), f"{key}={bad} passes"
        setattr(owner, f.name, good)
        assert dataclasses.is_dataclass(owner)


def test_a_sweep_launcher_without_its_plugin_says_which_extra(tmp_path, cli, python):
    """Without the submitit plugin (no `dev` extra) the suite's launchers fail with Hydra's bare
    'not found': the stage says what to install instead, exit 2, before any work."""
    blocked = ("import sys, runpy, importlib.abc\n"
               "class Block(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.startswith('hydra_plugins.hydra_submitit_launcher'):\n"
               "            raise ModuleNotFoundError(name)\n"
               "sys.meta_path.insert(0, Block())\n"
               "sys.argv = ['preflight', *sys.argv[1:]]\n"
               "runpy.run_module('plumbing.preflight', run_name='__main__')\n")
    r = cli([python, "-c", blocked, "-m", "seed=1,2", "hydra/launcher=ralign_local", f"output_dir={tmp_path / 'o'}"])
    assert r.returncode == 2, r.stderr[-2000:]
    assert "submitit launcher, which is not installed" in r.stderr and "ralign-suite[dev]" in r.stderr
    assert not (tmp_path / "o").exists()
