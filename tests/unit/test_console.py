"""What a person reads on the console: warnings once, short training lines, a pipeline ETA."""

from __future__ import annotations

import pytest

from plumbing.engines.progress import brief
from plumbing.pipeline import time_left


def test_a_library_warning_is_shown_once_however_often_its_registry_is_reset(cli, python):
    code = ("import warnings\n"
            "from plumbing.config.hydra_app import quiet_libraries\n"
            "quiet_libraries(); quiet_libraries()  # a second stage in one process does not wrap it twice\n"
            "for _ in range(3):\n"
            "    with warnings.catch_warnings():  # what transformers does around its own calls\n"
            "        warnings.simplefilter('default')\n"
            "        warnings.warn('`gradient_checkpointing` is deprecated', FutureWarning)\n"
            "warnings.warn('another one', FutureWarning)\n")
    r = cli([python, "-W", "default", "-c", code])
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("gradient_checkpointing") == 1 and r.stderr.count("another one") == 1, r.stderr


def test_a_training_log_line_is_short_and_keeps_the_values_that_say_how_it_goes():
    logs = {"loss": 0.25, "reward": 0.8375, "kl": 0.01, "learning_rate": 1e-4, "epoch": 0.03,
            **{f"genrm_reward/counter_{i}": 0.0 for i in range(30)}, "completions/mean_length": 52.9}
    line = brief(logs, 10, 120)
    assert line == "step 10/120  loss 0.25  reward 0.8375  kl 0.01  learning_rate 0.0001"
    assert len(line) < 120


def test_eta_uses_the_last_run_of_a_step_else_its_stage_else_all_steps():
    stages = {"a": "genrm_train", "b": "genrm_train", "c": "genrm_eval", "d": "genrm_eval"}
    assert time_left(["a", "b"], stages, {}, {}) is None  # nothing known yet
    assert time_left(["a", "b"], stages, {}, {"a": 100.0, "b": 50.0}) == 150.0  # both ran before
    assert time_left(["b", "c", "d"], stages, {"a": 200.0}, {"d": 30.0}) == pytest.approx(200 + 200 + 30)
    assert time_left(["d"], stages, {"a": 200.0, "c": 10.0}, {}) == 10.0  # its own stage's time
    assert time_left([], stages, {}, {}) == 0.0


def test_the_closing_lines_point_at_a_tracking_server_run_page_and_mask_its_password():
    from plumbing.report import where_to_look

    text = where_to_look("genrm_eval", "/o", "abc123", "https://user:hunter2@mlflow.example/", experiment_id="7")
    assert "[genrm_eval] browse:     https://user:***REDACTED***@mlflow.example/#/experiments/7/runs/abc123" in text, text
    assert "hunter2" not in text
    local = where_to_look("genrm_eval", "/o", "abc123", "sqlite:////o/mlflow.db", "/o/checkpoint")
    assert local.splitlines()[-1] == "[genrm_eval] browse:     mlflow ui --backend-store-uri sqlite:////o/mlflow.db"
