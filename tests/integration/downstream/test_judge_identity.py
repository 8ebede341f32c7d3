"""A judged grade is keyed by the judge model and the judge prompt's version, and the summary
says both: an edited prompt or another judge grades again (it used to reuse the old verdicts:
the grade cache did not know the prompt), the same settings grade nothing twice."""

from __future__ import annotations

import json

import pytest

from downstream_eval.tasks import Task, TaskConfig
from downstream_eval.tasks import rubric
from downstream_eval.tasks.multichallenge import MultiChallengeTask
from downstream_eval.tasks.pairwise import PairwiseTask
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.shipped import asset_path
from plumbing.testing.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def _records():
    return [json.loads(x) for x in open(asset_path("downstream_eval/assets/smoke_rubric.jsonl"))]


def test_an_edited_prompt_or_another_judge_grades_again(tmp_path, monkeypatch):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"task_id": r["QUESTION_ID"], "output": "An answer."}) + "\n"
                             for r in _records()))

    def judge(body):  # a judge that reads its instructions: the old prompt says YES, the new one NO
        return "\\boxed{NO}" if "STRICT" in body["messages"][0]["content"] else "\\boxed{YES}"

    out = tmp_path / "out"
    with LoopbackServer(responder=judge) as srv:
        def run(*extra):
            before = srv.chat_requests
            obj, cfg = finalize(*compose("downstream_eval", [
                "~suite", "task=[smoke_rubric]", f"predictions={preds}", f"output_dir={out}", "llm@judge=openai",
                f"judge.base_url={srv.base_url}", "judge.model=j1", "judge.max_retries=0", *extra]))
            s = execute("downstream_eval", obj, cfg)["tasks"]["smoke_rubric"]
            return s, srv.chat_requests - before

        expected = {r["QUESTION_ID"]: r["PASS_CRITERIA"] for r in _records()}
        first, sent = run()
        assert sent == len(expected) and first["judge"] == "openai:j1"
        assert first["score"] == pytest.approx(sum(v == "YES" for v in expected.values()) / len(expected))
        assert run()[1] == 0  # same judge, same prompt: from the grade cache

        monkeypatch.setattr(rubric, "RUBRIC_SYSTEM", rubric.RUBRIC_SYSTEM + " Be STRICT.")
        edited, sent = run()
        assert sent == len(expected)  # the judge is asked with the new prompt, no stale grade reused
        assert edited["judge_prompt"] != first["judge_prompt"] and edited["judge_prompt"].startswith("rubric@")
        assert edited["score"] == pytest.approx(sum(v == "NO" for v in expected.values()) / len(expected))
        assert run()[1] == 0

        other, sent = run("judge.model=j2")
        assert sent == len(expected) and other["judge"] == "openai:j2"


@pytest.mark.parametrize("kind, module, name", [(rubric.RubricTask, "downstream_eval.tasks.rubric", "RUBRIC_SYSTEM"),
                                                (MultiChallengeTask, "downstream_eval.tasks.multichallenge", "PROMPT"),
                                                (PairwiseTask, "genrm.prompts", "JUDGE_TEMPLATE")])
def test_each_judged_kind_s_prompt_is_in_its_grading_key(kind, module, name, monkeypatch):
    import importlib

    def key():
        return kind(TaskConfig(name="t", domain="general")).grading_identity()["judge_prompt"]

    before = key()
    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, name, getattr(mod, name) + " Also say why.")
    assert key() != before


def test_a_kind_that_renders_no_prompt_is_keyed_by_its_module_source():
    class Judged(Task):
        needs_judge = True

    t = Judged(TaskConfig(name="t", domain="general"))
    assert "class Judged(Task)" in t.judge_prompt()  # this file: where such a kind's prompt would be
    assert t.grading_identity()["judge_prompt"] == t.judge_prompt_version()
    assert t.judge_prompt_version().startswith("Judged@")
    assert "judge_prompt" not in Task(TaskConfig(name="t", domain="general")).grading_identity()  # not judged
