"""A task kind is a component: the task's YAML names the class (``_target_``) and its settings
(``params``), checked against the class's ``Params`` at start with every problem named
``tasks.<name>.params.<key>``; what grading needs is the kind's declaration; the grade
cache key covers the kind and all its params."""

from __future__ import annotations

import dataclasses

import pytest

from downstream_eval.tasks import Task, TaskConfig
from downstream_eval.tasks.multiple_choice import MultipleChoiceTask
from downstream_eval.tasks.pairwise import PairwiseTask
from plumbing.config.hydra_app import compose
from plumbing.config.validate import ConfigError

BASE = ["~suite", "output_dir=/tmp/ralign-task-components"]
JUDGE = ["llm@judge=openai", "judge.model=j", "judge.base_url=http://127.0.0.1:9/v1"]


def _problems(overrides):
    with pytest.raises(ConfigError) as err:
        compose("downstream_eval", BASE + overrides)
    return dict(err.value.problems)


def test_params_are_checked_against_the_kind_every_problem_at_once():
    problems = _problems(["task=[smoke_gpqa,smoke_humaneval,smoke_general]", *JUDGE,
                          "tasks.smoke_gpqa.params.seed=-1", "tasks.smoke_gpqa.params.typo=1",
                          "tasks.smoke_humaneval.params.timeout_s=0", "tasks.smoke_general.params.neutral=2",
                          "tasks.smoke_general.params.length_control=maybe"])
    assert "must be >= 0" in problems["tasks.smoke_gpqa.params.seed"]
    assert "MultipleChoiceTask takes no param 'typo'" in problems["tasks.smoke_gpqa.params.typo"]
    assert "must be > 0" in problems["tasks.smoke_humaneval.params.timeout_s"]
    assert "must be in [0, 1]" in problems["tasks.smoke_general.params.neutral"]
    assert "tasks.smoke_general.params.length_control" in problems
    assert len(problems) == 5, problems


def test_a_kind_that_is_no_task_or_does_not_import_is_named():
    problems = _problems(["task=[smoke_math,smoke_gpqa]", "tasks.smoke_math._target_=no_such_module.Kind",
                          "tasks.smoke_gpqa._target_=downstream_eval.tasks.Doc"])
    assert "cannot import 'no_such_module'" in problems["tasks.smoke_math._target_"]
    assert "is not a downstream_eval.tasks.Task" in problems["tasks.smoke_gpqa._target_"]


def test_yaml_params_reach_the_task_typed_with_the_kind_s_defaults():
    obj, _ = compose("downstream_eval", BASE + ["task=[toy_math,smoke_general]", *JUDGE,
                                                "tasks.toy_math.params.id_field=key"])
    from downstream_eval.run import build_tasks

    tasks = build_tasks(obj)
    math = tasks["toy_math"].params
    assert (math.instruction, math.id_field, math.answer_field) == ("", "key", "answer")  # YAML, override, default
    assert tasks["smoke_general"].params.length_control is True and tasks["smoke_general"].params.neutral == 0.5


def test_needs_are_the_kind_s_declarations():
    problems = _problems(["task=[smoke_rubric]"])  # a judged kind, no judge given
    assert "smoke_rubric" in problems["judge"]
    cfg = TaskConfig(_target_="downstream_eval.tasks.humaneval.HumanEvalTask", domain="code")
    assert cfg.declares("needs_sandbox") and not cfg.declares("needs_judge")
    assert not TaskConfig(_target_="nowhere.Kind", domain="code").declares("needs_judge")


def test_the_grade_cache_key_covers_the_kind_and_every_param():
    def identity(cls, **params):
        return cls(TaskConfig(name="t", domain="stem", params=params)).grading_identity()

    base = identity(MultipleChoiceTask)
    assert base["kind"] == "downstream_eval.tasks.multiple_choice.MultipleChoiceTask"
    assert base["params"] == dataclasses.asdict(MultipleChoiceTask.Params())  # defaults too: a changed default regrades
    assert identity(MultipleChoiceTask, seed=0) == base
    assert identity(MultipleChoiceTask, seed=1) != base

    class Renamed(MultipleChoiceTask):
        pass

    assert identity(Renamed)["kind"] != base["kind"]
    assert identity(PairwiseTask, neutral=0.0) != identity(PairwiseTask)


def test_a_task_built_directly_refuses_bad_params():
    with pytest.raises(ConfigError, match=r"tasks\.t\.params\.seed"):
        MultipleChoiceTask(TaskConfig(name="t", domain="stem", params={"seed": "x"}))
    with pytest.raises(ConfigError, match=r"tasks\.t\.params\.anything: Task takes no param"):
        Task(TaskConfig(name="t", domain="stem", params={"anything": 1}))
