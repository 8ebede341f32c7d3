"""A key no config field takes is refused, however it is given: Hydra lets ``+key=value``
add any key (its own hint suggests it), and the value would otherwise be ignored silently."""

from __future__ import annotations

import pytest

from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError


def test_keys_added_with_plus_that_no_field_takes_are_refused_all_at_once(tmp_path):
    with pytest.raises(ConfigError) as e:
        compose("genrm_eval", [f"output_dir={tmp_path}", "genrm.model=/m", "+no_such_key=1", "+genrm.max_retry=1",
                               "+data.helpsteer3.limt=5", "+tasks.x.options.timeout_s=-5"])
    problems = dict(e.value.problems)
    assert set(problems) == {"no_such_key", "genrm.max_retry", "data.helpsteer3.limt", "tasks"}
    assert "did you mean 'max_retries'" in problems["genrm.max_retry"]
    assert "did you mean 'limit'" in problems["data.helpsteer3.limt"]


def test_free_mappings_still_take_new_keys(tmp_path):
    obj, _ = compose("genrm_eval", [f"output_dir={tmp_path}", "genrm.model=/m", "+tracking.tags.team=rm",
                                    "+genrm.chat_template_kwargs.enable_thinking=false"])
    assert obj.tracking.tags == {"team": "rm"} and obj.genrm.chat_template_kwargs == {"enable_thinking": False}
