"""The samples.jsonl row contract (genrm.records.JudgedRow): what genrm.evaluate writes is
what genrm.score and the papers' exports read back.

``judged_rows/`` holds files written by genrm.evaluate's earlier dict code (commit 89e2703),
on the rule judge (genrm.testing) over tests/helpers/genrm_fixtures.py data: ``swap/`` with
``judging.swap=true``, a MetaRM and a MetaJudge (helpsteer3 with one call failing with HTTP
400 and one cut at max_tokens, rationalerm_helpsteer3 with a fourth sample of 12 reasons,
rm_bench), ``plain/`` with the GenRM alone; ``export/`` what export.format=ralign and
=rationalerm wrote from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrm.exports import ExportNames, ralign, rationalerm
from genrm.records import AtomicRecord, JudgedRow, MetaRMRecord, SwappedJudgment
from plumbing.data import FieldError

OLD = Path(__file__).parent / "judged_rows"
OPTIONAL = {"model_judgment_swapped", "model_pred_swapped", "swap_consistent", "genrm_error_swapped", "meta",
            "metarm_raw", "metarm_verdict", "metarm_score", "atomic"}


def _full_row() -> JudgedRow:
    return JudgedRow("r1", "helpsteer3", "math", "A", "A wins \\boxed{A}", "A", True, None, True,
                     swapped=SwappedJudgment("B wins \\boxed{B}", "A", True, "server_error"),
                     meta={"difficulty": "hard"}, metarm=MetaRMRecord("Verdict: Correct", "Correct", 1),
                     atomic=AtomicRecord("valid", None, ["h1", "h2"], ["m1"], "1. m1", "- R1@S1: 1",
                                         {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "ap": 0.5}, "strict"))


def test_a_row_with_every_optional_field_and_a_minimal_one_read_back_equal():
    full = _full_row()
    assert JudgedRow.from_json(json.loads(json.dumps(full.to_json()))) == full
    assert OPTIONAL <= set(full.to_json())
    minimal = JudgedRow("r2", "helpsteer3", None, None, None, None, None, "client_error", False)
    assert set(minimal.to_json()).isdisjoint(OPTIONAL)  # an absent group is left out, as it always was
    assert JudgedRow.from_json(json.loads(json.dumps(minimal.to_json()))) == minimal
    skipped = JudgedRow("r3", gt_label="B", model_pred="A", label_correct=False,
                        metarm=MetaRMRecord(None, "SkippedLabelMismatch", None),
                        atomic=AtomicRecord("skipped", "model_list_too_long", ["h"], None, "1. a", None, {},
                                            "reference"))
    assert JudgedRow.from_json(skipped.to_json()) == skipped
    assert skipped.atomic.outcome() == (None, "model_list_too_long")


def _old_files():
    return sorted(OLD.glob("*/*/samples.jsonl"))


def test_files_the_old_dict_code_wrote_read_back_line_for_line():
    seen = set()
    for path in _old_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            seen |= set(rec) | ({f"atomic:{rec['atomic']['status']}"} if "atomic" in rec else set())
            assert json.dumps(JudgedRow.from_json(rec).to_json(), ensure_ascii=False) == line, (path, rec["id"])
    # the fixture covers every group of optional keys and both atomic outcomes
    assert OPTIONAL | {"atomic:valid", "atomic:skipped"} <= seen


@pytest.mark.parametrize("run", ["swap", "plain"])
def test_the_exports_of_the_rows_read_back_are_the_files_the_old_code_wrote(tmp_path, run):
    metarm = "metarm-model" if run == "swap" else "none"
    for path in sorted((OLD / run).glob("*/samples.jsonl")):
        bench = path.parent.name
        rows = [JudgedRow.from_json(json.loads(x)) for x in path.read_text(encoding="utf-8").splitlines()]
        names = ExportNames(bench, "genrm-model", metarm)
        [written] = ralign.write(rows, tmp_path / run, names)
        assert written.read_bytes() == (OLD / run / "export" / written.relative_to(tmp_path / run)).read_bytes()
        if run == "swap":
            [written] = rationalerm.write(rows, tmp_path / run, names)
            expected = OLD / run / "export" / written.relative_to(tmp_path / run)
            assert written.read_bytes() == (expected.read_bytes() if expected.exists() else b""), bench


@pytest.mark.parametrize(
    "change,field",
    [
        ({"gt_label": "C"}, "gt_label"),
        ({"model_pred": "X"}, "model_pred"),
        ({"model_pred_swapped": 1}, "model_pred_swapped"),
        ({"label_correct": "yes"}, "label_correct"),
        ({"metarm_verdict": "Maybe"}, "metarm_verdict"),
        ({"metarm_verdict": "SkippedLabelMismatch"}, "metarm_verdict"),  # on a label-correct row
        ({"meta": ["x"]}, "meta"),
        ({"atomic": {"status": "done"}}, "atomic.status"),
        ({"atomic": {"status": "valid", "precision": 1.0}}, "atomic"),
        ({"atomic": {"status": "skipped", "reference": "h1"}}, "atomic.reference"),
    ],
)
def test_a_wrong_field_is_refused_by_name(change, field):
    with pytest.raises(FieldError) as err:
        JudgedRow.from_json({**_full_row().to_json(), **change})
    assert err.value.field == field


def test_a_label_is_read_as_the_benchmarks_read_it_and_a_row_without_the_flag_by_its_verdict():
    row = JudgedRow.from_json({"id": "x", "gt_label": "b ", "model_pred": "B"})
    assert (row.gt_label, row.label_correct, row.correct) == ("B", None, True)
    assert JudgedRow.from_json({"id": "y", "gt_label": None, "label_correct": None}).category() is None
