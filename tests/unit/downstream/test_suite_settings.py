"""A suite's generator settings are what its tasks run with: the stage root's own defaults
come before the suite, not after it (they used to replace every suite's sampling)."""

from __future__ import annotations

import pytest

from plumbing.config.hydra_app import compose

JUDGE = ["llm@judge=openai", "judge.model=m", "judge.base_url=http://127.0.0.1:9/v1"]


@pytest.mark.parametrize("suite,temperature,max_tokens", [("smoke", 0.0, 48), ("smoke_toy", 0.0, 32),
                                                            ("ralign_paper", 0.6, 32768)])
def test_the_suite_s_sampling_reaches_the_generator(tmp_path, suite, temperature, max_tokens):
    obj, _ = compose("downstream_eval", [f"suite={suite}", f"output_dir={tmp_path}", *JUDGE], validate_config=False)
    assert (obj.generator.sampling.temperature, obj.generator.sampling.max_tokens) == (temperature, max_tokens)


def test_the_command_line_still_overrides_the_suite(tmp_path):
    obj, _ = compose("downstream_eval", ["suite=smoke", "generator.sampling.max_tokens=7", f"output_dir={tmp_path}"],
                     validate_config=False)
    assert obj.generator.sampling.max_tokens == 7
