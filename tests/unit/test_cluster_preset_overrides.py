"""The cluster presets keep only algorithm-neutral settings, so `algo=grpo` / `algo=ppo` on the
command line switches the algorithm (their own algo block used to win silently); and a preset
that leaves a value to the user says what to give."""

from __future__ import annotations

import pytest
import yaml

from plumbing.config.hydra_app import compose, conf_dir
from plumbing.config.validate import ConfigError
from plumbing.engines.openrlhf_plan import PLACEHOLDERS, cluster_presets

SPECIFIC = ("estimator", "n_samples_per_prompt", "kl_coef", "kl_estimator", "use_kl_loss", "actor_lr")


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_algo_on_the_command_line_switches_every_cluster_preset(algo):
    from omegaconf import OmegaConf

    from plumbing.config.schema import AlgoConfig

    # the option's settings: what its file gives over the dataclass defaults (it holds only what differs)
    given = yaml.safe_load((conf_dir() / "algo" / f"{algo}.yaml").read_text()) or {}
    own = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(AlgoConfig), given))
    presets = cluster_presets()
    assert len(presets) >= 10
    for preset, stage in presets:
        obj, _ = compose(stage, [f"experiment={preset}", f"algo={algo}", *PLACEHOLDERS.get(stage, [])],
                         validate_config=False)
        assert {k: getattr(obj.algo, k) for k in SPECIFIC} == {k: own[k] for k in SPECIFIC}, preset


def test_a_policy_preset_without_its_genrm_says_what_to_give():
    with pytest.raises(ConfigError) as e:
        compose("policy_train", ["experiment=policy_ppo_qwen3_8b", "dry_run=true"])
    assert "give genrm.model=<" in str(e.value) and "runs:/<genrm_train run id>" in str(e.value), str(e.value)
