"""The component mechanism as users and contributors reach it: names, params by every
spelling, classes that do not import, defaults a run records and its hash covers, secrets."""

from __future__ import annotations

import pytest

from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError

BASE = ["experiment=smoke_genrm"]


def _genrm(tmp_path, *extra):
    return compose("genrm_train", [*BASE, f"output_dir={tmp_path}", *extra])[0]


def test_the_option_names_the_component_unless_its_class_is_replaced(tmp_path):
    assert _genrm(tmp_path).reward.label == "ralign" and _genrm(tmp_path).engine.name == "local"
    assert _genrm(tmp_path, "reward=hybrid", "llm@metajudge=toy_oracle").reward.label == "hybrid"  # a choice
    replaced = _genrm(tmp_path, "reward._target_=genrm.rewards.outcome.OutcomeReward")
    assert replaced.reward.label == "outcome"  # the class's own name, not the option's (ralign)


def test_params_by_every_hydra_spelling(tmp_path):
    for spelling in ("reward.params.metarm_failure_reward=0.25", "+reward.params.metarm_failure_reward=0.25",
                     "++reward.params.metarm_failure_reward=0.25", "reward.params={metarm_failure_reward:0.25}"):
        assert _genrm(tmp_path, spelling).reward.typed_params().metarm_failure_reward == 0.25, spelling


def test_a_class_that_fails_to_import_is_a_config_problem_not_a_traceback(tmp_path, monkeypatch):
    (tmp_path / "broken_reward.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "syntax_reward.py").write_text("class X(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for target, why in (("broken_reward.X", "RuntimeError: boom at import"), ("syntax_reward.X", "SyntaxError")):
        with pytest.raises(ConfigError) as e:
            _genrm(tmp_path / "o", f"reward._target_={target}")
        assert [k for k, _ in e.value.problems] == ["reward._target_"] and why in e.value.problems[0][1]
    with pytest.raises(ConfigError) as e:
        _genrm(tmp_path / "o", "engine._target_=genrm.rewards.outcome.OutcomeReward")
    assert [k for k, _ in e.value.problems] == ["engine._target_"]


def test_a_changed_params_default_changes_what_a_run_records_and_its_hash(tmp_path, monkeypatch):
    """Params a YAML leaves at their defaults are recorded (config.yaml, MLflow) and hashed,
    so a pipeline does not reuse a run computed under another default."""
    from genrm.rewards.ralign import RAlignParams
    from plumbing.components import fill_params
    from plumbing.config.hydra_app import plain
    from plumbing.pipeline import config_hash

    obj, cfg = compose("genrm_train", [*BASE, f"output_dir={tmp_path}"])
    assert fill_params(obj, plain(cfg))["reward"]["params"]["metarm_failure_reward"] == 0.0
    pipe, _ = compose("pipeline", ["experiment=smoke", f"output_dir={tmp_path / 'p'}"])
    pipe = pipe.graph()  # the matrix written out
    hashes = {}
    for name in ("preflight", "genrm_outcome", "genrm_ralign"):
        hashes[name] = config_hash(pipe, name, hashes)
    monkeypatch.setattr(RAlignParams.__dataclass_fields__["metarm_failure_reward"], "default", 0.5)
    assert config_hash(pipe, "genrm_ralign", hashes) != hashes["genrm_ralign"]
    assert config_hash(pipe, "genrm_outcome", hashes) == hashes["genrm_outcome"]  # not a param of its reward


def test_a_secret_param_never_reaches_a_job_module_or_a_cache_identity(tmp_path):
    from plumbing.engines.openrlhf import write_reward_module
    from plumbing.secrets import digest_secrets

    with pytest.raises(ConfigError) as e:
        write_reward_module(tmp_path / "m.py", "x:y", {"reward": {"params": {"api_key": "sk-abcdef123456"}}})
    assert [k for k, _ in e.value.problems] == ["reward.params.api_key"] and not (tmp_path / "m.py").exists()
    one, two = digest_secrets({"api_key": "sk-abcdef123456"}), digest_secrets({"api_key": "sk-other-654321"})
    assert one != two and "sk-abcdef123456" not in str(one)


def test_a_pipeline_s_search_path_reaches_its_steps(tmp_path, cli, ralign):
    """A preset and a reward of your own, found through hydra.searchpath by the pipeline, are
    found by its steps too (they compose their own configs, here and in their jobs)."""
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "reward").mkdir()
    (conf / "experiment" / "my_pipe.yaml").write_text(
        "# @package _global_\nstage: pipeline\nname: my_pipe\nsteps:\n  genrm:\n    stage: genrm_train\n"
        "    overrides: [experiment=smoke_genrm, reward=my_outcome]\n")
    (conf / "reward" / "my_outcome.yaml").write_text("_target_: genrm.rewards.outcome.OutcomeReward\n"
                                                     "params: {format_fail_reward: -1.0}\n")
    r = cli([ralign, "run", "experiment=my_pipe", f"hydra.searchpath=[file://{conf}]", "dry_run=true",
             f"output_dir={tmp_path / 'out'}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "reward=my_outcome" in r.stdout
