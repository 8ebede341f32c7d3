"""genrm.score on result files from elsewhere and on this suite's own samples.jsonl."""

from __future__ import annotations

import json

import pytest

import genrm_fixtures as fx
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.data import InputError


def _score(tmp_path, path, *extra):
    obj, cfg = finalize(*compose("genrm_score", [f"input={path}", f"output_dir={tmp_path / 'out'}",
                                                 "tracking.enabled=false", *extra]))
    return execute("genrm_score", obj, cfg)


def _ralign_results():
    """An R-Align result file: 8 samples, hand-counted below."""
    rows = [
        ("A", "A", "Correct", "helpsteer3"), ("A", "A", "Correct", "helpsteer3"), ("B", "B", "Incorrect", "chat"),
        ("B", "A", "SkippedLabelMismatch", "chat"), ("A", None, "SkippedLabelMismatch", "chat"),
        ("A", "A", "CallFail", "helpsteer3"), ("B", "B", "ParseFail", "chat"), ("A", "A", "Correct", "chat"),
    ]
    return [{"id": i, "gt_label": gt, "model_pred": pred, "model_judgment": f"... \\boxed{{{pred}}}",
             "metarm_verdict": v, "source": {"subset": sub}} for i, (gt, pred, v, sub) in enumerate(rows)]


def test_ralign_result_file(tmp_path):
    s = _score(tmp_path, fx.write(tmp_path / "res.jsonl", _ralign_results()))
    # n=8, label-correct 6 (all but rows 3, 4); Correct 3, Incorrect 1, CallFail 1, ParseFail 1
    assert (s["n"], s["label_correct"], s["correct"], s["incorrect"], s["call_fail"], s["parse_fail"]) == (8, 6, 3, 1, 1, 1)
    assert s["l_acc"] == pytest.approx(6 / 8) and s["s_corr"] == pytest.approx(1 / 4)
    assert s["f_score"] == pytest.approx(3 / 6)
    for k in ("l_acc", "s_corr", "f_score"):
        lo, hi = s[f"{k}_ci"]
        assert 0 <= lo <= s[k] <= hi <= 1
    assert s["by_subset"]["helpsteer3"]["n"] == 3 and s["by_subset"]["chat"]["l_acc"] == pytest.approx(3 / 5)
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["l_acc"] == s["l_acc"] and on_disk["records"]["read"] == 8


def test_model_pred_is_parsed_from_the_judgment_when_absent(tmp_path):
    rows = [{"gt_label": "A", "model_judgment": "<think>\\boxed{B}</think> so \\boxed{A}"},
            {"gt_label": "B", "model_judgment": "no verdict"}]
    s = _score(tmp_path, fx.write(tmp_path / "r.jsonl", rows), "format=ralign")
    assert (s["n"], s["label_correct"], s["s_corr"]) == (2, 1, None)


def _rrm(gen, human, model_items, domain="stem"):
    return {"samples": [{"generated_text": gen}],
            "metadata": {"human-checklist": human, "qwen-checklist": model_items, "domain": domain}}


def test_rationalerm_matcher_output_with_the_strict_rules(tmp_path):
    recs = [
        # n=3, m=4: P=1.5/4, R=1.5/3, AP=(1 + 1.5/2)/3
        _rrm("<RESULT_START>\n- R1@S2: 1\n- R2@S4: 0.5\n- R3@S0: 0\n<RESULT_END>", ["a", "b", "c"], ["w", "x", "y", "z"]),
        # 7 model items: capped at 5, S5 allowed
        _rrm("<RESULT_START>\n- R1@S5: 1\n<RESULT_END>", ["a"], list("abcdefg"), "code"),
        _rrm("<RESULT_START>\n- R1@S1: 1\n<RESULT_END>", ["a"], list("abcdefghijk")),  # 11 items: skipped
        _rrm("<RESULT_START>\n- R1@S1: 1\n<RESULT_END>", ["a"], []),  # empty: skipped
        _rrm("<RESULT_START>\n- R1@S1: 1\n<RESULT_END>", ["a", "b"], ["x"]),  # 1 line for 2 items: invalid
        _rrm("<RESULT_START>\n- R1@S6: 1\n<RESULT_END>", ["a"], list("abcdefg")),  # S6 beyond the cap: invalid
    ]
    s = _score(tmp_path, fx.write(tmp_path / "m.jsonl", recs), "format=rationalerm", "atomic.profile=strict")
    assert (s["valid"], s["skipped"]) == (2, 4)
    assert s["skipped_by_reason"] == {"model_list_too_long": 1, "empty_model_list": 1, "matcher_invalid": 2}
    first = {"precision": 1.5 / 4, "recall": 0.5, "ap": (1 + 1.5 / 2) / 3}
    second = {"precision": 1 / 5, "recall": 1.0, "ap": 1.0}
    for k in first:
        assert s[k] == pytest.approx((first[k] + second[k]) / 2)
    assert s["by_subset"]["code"]["valid"] == 1
    loose = _score(tmp_path, fx.write(tmp_path / "m.jsonl", recs), "format=rationalerm", "atomic.skip_more_than=20",
                   "atomic.skip_empty=false", "atomic.profile=strict")
    assert loose["skipped_by_reason"] == {"matcher_invalid": 3}  # empty list: S1 out of range now


# RationaleRM's analysis (metajudge_analysis.py), as the issue and its code describe it: n
# reference items, m = min(model items, 5); each case's numbers worked out by hand.
S, E = "<RESULT_START>", "<RESULT_END>"
REFERENCE_CASES = [
    # (matcher answer, reference items, model items, expected P, R, AP or the outcome)
    (f"{S}\nScores corresponding to claims:\n- R1@S1: 1\n- R2@S0: 0\n{E}", 2, 2, (1 / 2, 1 / 2, 1 / 2)),  # header line
    (f"{S}\n- R1@S6: 1\n- R2@S2: 0.5\n{E}", 2, 7, (0.5 / 5, 0.5 / 2, 0.5 / 2)),  # S6 past the cap: dropped
    (f"{S}\n- R1@S1: 0.3\n{E}", 1, 1, (0.3, 0.3, 0.3)),  # any score in [0, 1]
    (f"{S}\n- R1@S1: 0\n- R2@S2: 1\n{E}", 2, 2, (1 / 2, 1 / 2, (0 + 1 / 2) / 2)),  # S1 scored 0 is ranked
    (f"<think>{S}\n- R1@S1: 1\n{E}</think>{S}\n- R1@S0: 0\n{E}", 1, 1, (1.0, 1.0, 1.0)),  # the first block
    (f"{S}\n- R1@S1: 1\n- R3@S2: 1\n{E}", 2, 2, (1 / 2, 1 / 2, 1 / 2)),  # R3: counted, then dropped
    (f"{S}\n- R1@S1: 1\n- R1@S2: 0.5\n{E}", 2, 2, (1.5 / 2, 1 / 2, (1 + 1.5 / 2) / 2)),  # R1 twice
    (f"{S}\n- R1@S1: 1\n", 1, 1, "error"),  # no end marker
    (f"{S}\nR1@S1: 1\n{E}", 1, 1, "error"),  # no "- " line
    (f"{S}\n- R1@S1: 1\n{E}", 2, 1, "error"),  # one line for two reference items
    (f"{S}\n- R1@S1: 1.5\n{E}", 1, 1, "error"),  # a score above 1
    (None, 1, 1, "error"),  # the matcher call failed: samples []
    (f"{S}\nR1@S1: 1\n{E}", 1, 11, "error"),  # unreadable: an error before the list is looked at
    (f"{S}\n- R1@S1: 1\n{E}", 1, 11, "skipped"),  # more than 10 model items: passed over silently
    (f"{S}\n- R1@S1: 1\n{E}", 1, 0, "skipped"),  # no model item: passed over silently
]


def test_the_reference_profile_reproduces_rationalerm_s_analysis(tmp_path):
    recs = [{"samples": [] if text is None else [{"generated_text": text}],
             "metadata": {"human-checklist": [f"h{i}" for i in range(n)], "Qwen-checklist": [f"m{i}" for i in range(m)]}}
            for text, n, m, _ in REFERENCE_CASES]
    s = _score(tmp_path, fx.write(tmp_path / "m.jsonl", recs), "format=rationalerm", "model=qwen")
    valid = [want for *_, want in REFERENCE_CASES if isinstance(want, tuple)]
    f1 = [2 * p * r / (p + r) for p, r, _ in valid]
    assert (s["valid"], s["error_samples"]) == (7, 6)
    assert s["skipped_by_reason"] == {"matcher_invalid": 5, "matcher_call_failed": 1, "model_list_too_long": 1,
                                      "empty_model_list": 1}
    for k, col in (("precision", 0), ("recall", 1), ("ap", 2)):
        assert s[k] == pytest.approx(sum(v[col] for v in valid) / len(valid)), k
    assert s["f1"] == pytest.approx(sum(f1) / len(f1))
    assert s["atomic_rules"]["profile"] == "reference" and s["atomic_rules"]["block"] == "first"
    strict = _score(tmp_path, fx.write(tmp_path / "m.jsonl", recs[:-4]), "format=rationalerm", "model=qwen",
                    "atomic.profile=strict")
    # the suite's own reading: the header line, S6, 0.3, R3 and a repeated R1 are invalid; the
    # last block after thinking is read, a missing end marker and a line without "- " are not errors
    assert (strict["valid"], strict["skipped_by_reason"]) == (4, {"matcher_invalid": 7})
    assert strict["atomic_rules"]["profile"] == "strict"


@pytest.mark.parametrize(
    "record,field",
    [
        ({"gt_label": "C", "model_pred": "A"}, "gt_label"),
        ({"gt_label": "A", "model_pred": "A", "metarm_verdict": "Maybe"}, "metarm_verdict"),
        ({"gt_label": "A", "model_pred": "A", "metarm_verdict": "SkippedLabelMismatch"}, "metarm_verdict"),
        ({"samples": [{"generated_text": "x"}], "metadata": {"human-checklist": []}}, "metadata.human-checklist"),
        ({"something": 1}, "<record>"),
    ],
)
def test_bad_records_name_line_and_field(tmp_path, record, field):
    # (the reference profile counts an incomplete matcher record as RationaleRM's analysis
    # does, as an error, and goes on: see test_incomplete_matcher_records_are_counted_errors)
    path = fx.write(tmp_path / "bad.jsonl", [{"gt_label": "A", "model_pred": "A"}, record])
    with pytest.raises(InputError) as err:
        _score(tmp_path, path, "atomic.profile=strict")
    assert (err.value.line, err.value.field) == (2, field)
    s = _score(tmp_path, path, "on_bad_record=skip", "atomic.profile=strict")
    assert s["n"] == 1 and s["records"]["skipped"] == 1


def test_cli_requires_input_and_exits_2_on_an_empty_file(tmp_path, cli, python):
    no_input = cli([python, "-m", "genrm.score", f"output_dir={tmp_path}"])
    assert no_input.returncode == 2 and "input" in no_input.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = cli([python, "-m", "genrm.score", f"input={empty}", f"output_dir={tmp_path / 'o'}"])
    assert proc.returncode == 2 and "no usable records" in proc.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


def test_large_files_are_read_in_parallel_parts_with_file_line_numbers(tmp_path, monkeypatch):
    import genrm.score as gs

    records = [{"gt_label": "AB"[i % 2], "model_pred": "A", "metarm_verdict": None if i % 2 else "Correct",
                "source": {"subset": f"s{i % 3}"}} for i in range(3000)]
    path = fx.write(tmp_path / "big.jsonl", records)
    serial = _score(tmp_path, path)
    monkeypatch.setattr(gs, "PARALLEL_BYTES", 1000)  # force the parallel path on a small file
    parallel = _score(tmp_path, path)
    for k in ("n", "l_acc", "l_acc_ci", "s_corr", "f_score", "by_subset"):
        assert parallel[k] == serial[k], k
    lines = path.read_text().splitlines()
    lines[2499] = '{"gt_label": "X", "model_pred": "A"}'  # line 2500, in the second part
    lines[2799] = '{"gt_label": "A", "model_pred": "A", "metarm_verdict": "Maybe"}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        _score(tmp_path, path)
    assert (err.value.line, err.value.field) == (2500, "gt_label")
    skipped = _score(tmp_path, path, "on_bad_record=skip")
    assert skipped["n"] == 2998 and skipped["records"]["skipped"] == 2
    assert [p.split(": field")[0] for p in skipped["records"]["problems"]] == [f"{path}:2500", f"{path}:2800"]


def test_a_label_with_spaces_or_lower_case_is_read_as_evaluate_reads_it(tmp_path):
    """One rule for gt_label in genrm.score and genrm.evaluate (genrm.records.label_field):
    'A ' and 'b' are A and B in both; 'C' is refused by both, naming the field."""
    from genrm.records import label_field

    rows = [{"gt_label": "A ", "model_pred": "A"}, {"gt_label": "b", "model_pred": "B"}]
    s = _score(tmp_path, fx.write(tmp_path / "r.jsonl", rows), "format=ralign")
    assert (s["n"], s["label_correct"]) == (2, 2)
    from genrm.benchmarks.ralign_bmk import RAlignFormat  # how genrm.evaluate reads the same field

    sample = {"id": "x", "conversations": [{"role": "user", "content": "q"}], "response_A": "a", "response_B": "b"}
    assert [RAlignFormat().convert({**sample, "gt_label": r["gt_label"]}).gt_label for r in rows] == ["A", "B"]
    assert [label_field(r["gt_label"], "gt_label") for r in rows] == ["A", "B"]
    with pytest.raises(InputError, match="gt_label"):
        _score(tmp_path, fx.write(tmp_path / "c.jsonl", [{"gt_label": "C", "model_pred": "A"}]), "format=ralign")


def test_model_name_on_the_command_line(tmp_path, cli, python):
    """`model=NAME` is the checklist's model, not the `model/` config group (Hydra would take it so)."""
    rec = _rrm(f"{S}\n- R1@S1: 1\n{E}", ["a"], ["x"])
    rec["metadata"]["other-checklist"] = ["y"]
    path = fx.write(tmp_path / "m.jsonl", [rec])
    r = cli([python, "-m", "genrm.score", f"input={path}", "format=rationalerm", "model=qwen",
             f"output_dir={tmp_path / 'o'}", "tracking.enabled=false"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["valid"] == 1


def _suite_row(i, answer, n=2, m=2, profile="strict", **extra):
    from genrm.metrics import atomic_scores
    from genrm.parsing import MATCH_PROFILES, parse_matches

    rules = MATCH_PROFILES[profile]
    parsed = parse_matches(answer, n, m, rules)
    atomic = {"status": "valid" if parsed.ok else "skipped", "skip_reason": None if parsed.ok else "matcher_invalid",
              "reference": [f"h{k}" for k in range(n)], "model_items": [f"m{k}" for k in range(m)],
              "matcher_raw": answer, "profile": profile,
              **(atomic_scores(parsed.matches, n, m, rules.zero_in_ap) if parsed.ok else {})}
    return {"id": f"s{i}", "benchmark": "hs", "subset": "chat", "gt_label": "A", "model_pred": "A",
            "label_correct": True, "atomic": atomic, **extra}


def test_the_rationalerm_export_gives_the_run_s_numbers_whatever_profile_read_it(tmp_path):
    """An answer the suite read its strict way (a draft block in the thinking, no end marker,
    an item scored 0, a repeated R line it refuses) is exported as the suite read it, so the
    reference reading (RationaleRM's analysis) of the export gives the suite's numbers."""
    answers = [f"<think>{S}\n- R1@S1: 1\n- R2@S2: 1\n{E}</think>{S}\n- R1@S1: 0.5\n- R2@S0: 0\n{E}",
               f"{S}\n- R1@S1: 1\n- R2@S2: 0.5\n", f"{S}\n- R1@S1: 0\n- R2@S2: 1\n{E}",
               f"{S}\n- R1@S1: 1\n- R1@S2: 0.5\n{E}"]
    rows = [_suite_row(i, a) for i, a in enumerate(answers)]
    src = fx.write(tmp_path / "samples.jsonl", rows)
    own = _score(tmp_path, src, "format=suite", "export.format=rationalerm")
    [path] = own["export"]
    back = _score(tmp_path, path, "format=rationalerm", "model=genrm")
    assert (back["valid"], back["error_samples"]) == (own["valid"], 1) == (3, 1)
    for k in ("precision", "recall", "f1", "ap"):
        assert back[k] == pytest.approx(own[k]), k


def test_the_ralign_export_leaves_out_what_the_suite_does_not_count(tmp_path):
    """Unlabeled samples are outside L-Acc here (R-Align's files always have a label), and a
    label-correct sample without a golden judgment outside the F-Score: exported, they do not
    change show_result.py's L-Acc, S-Corr or F-Score (its rules: every row counts for L-Acc,
    F-Score = Correct / (rows - CallFail - ParseFail))."""
    rows = [_suite_row(0, "", metarm_verdict="Correct"), _suite_row(1, "", metarm_verdict="Incorrect"),
            _suite_row(2, "", metarm_verdict=None),  # no golden judgment
            {**_suite_row(3, ""), "gt_label": None, "label_correct": None},  # unlabeled
            {**_suite_row(4, ""), "label_correct": False, "model_pred": "B", "metarm_verdict": "SkippedLabelMismatch"}]
    for r in rows:
        r.pop("atomic")
    own = _score(tmp_path, fx.write(tmp_path / "samples.jsonl", rows), "format=suite", "export.format=ralign")
    [path] = own["export"]
    exported = [json.loads(x) for x in open(path)]
    total = len(exported)
    correct = sum(r["metarm_verdict"] == "Correct" for r in exported)
    failed = sum(r["metarm_verdict"] in ("CallFail", "ParseFail") for r in exported)
    label_acc = sum(r["model_pred"] == r["gt_label"] for r in exported) / total
    assert (label_acc, correct / (total - failed)) == (pytest.approx(own["l_acc"]), pytest.approx(own["f_score"]))


def test_incomplete_matcher_records_are_counted_errors_under_the_reference_profile(tmp_path):
    """RationaleRM's analysis counts a record without samples, metadata or checklists as an
    error and scores the rest (it reads the answer first: an unreadable one is an error too)."""
    good = _rrm(f"{S}\n- R1@S1: 1\n{E}", ["a"], ["x"])
    recs = [good, {"samples": [], "metadata": good["metadata"]}, {"samples": good["samples"], "metadata": {}},
            {"samples": good["samples"], "metadata": {"human-checklist": [], "qwen-checklist": ["x"]}},
            {"samples": [{"generated_text": "no block"}], "metadata": {"human-checklist": []}}]
    s = _score(tmp_path, fx.write(tmp_path / "m.jsonl", recs), "format=rationalerm", "model=qwen")
    assert (s["valid"], s["error_samples"]) == (1, 4)
    assert s["skipped_by_reason"] == {"matcher_call_failed": 1, "record_incomplete": 2, "matcher_invalid": 1}


def test_a_line_that_is_not_json_is_passed_over_as_the_reference_does(tmp_path):
    good = _rrm(f"{S}\n- R1@S1: 1\n{E}", ["a"], ["x"])
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps(good) + "\n")
    s = _score(tmp_path, path, "format=rationalerm", "model=qwen")
    assert (s["valid"], s["error_samples"], s["records"]["skipped"]) == (2, 0, 1)
    with pytest.raises(InputError, match=":2: "):  # the suite's own reading refuses the file, naming the line
        _score(tmp_path, path, "format=rationalerm", "model=qwen", "atomic.profile=strict")


def test_an_empty_reference_list_is_passed_over_where_the_model_list_is(tmp_path):
    """RationaleRM's analysis looks at the model list's length before it uses the reference
    list: a sample with no reference item is passed over silently where its model list is too
    long or empty, and counted an error otherwise (checked with metajudge_analysis.py)."""
    good = _rrm(f"{S}\n- R1@S1: 1\n{E}", ["a"], ["x"])
    recs = [good, _rrm(f"{S}\n- R1@S1: 1\n{E}", [], list("abcdefghijk")), _rrm(f"{S}\n- R1@S1: 1\n{E}", [], []),
            _rrm(f"{S}\n- R1@S1: 1\n{E}", [], ["x"])]
    s = _score(tmp_path, fx.write(tmp_path / "m.jsonl", recs), "format=rationalerm", "model=qwen")
    assert (s["valid"], s["error_samples"]) == (1, 1)
    assert s["skipped_by_reason"] == {"model_list_too_long": 1, "empty_model_list": 1, "record_incomplete": 1}


def test_an_ralign_file_with_no_label_right_has_f_score_0_as_show_result_prints(tmp_path):
    """Every label wrong, the MetaRM skipped them all: show_result.py prints F-Score 0.00%
    (0 Correct of 2) and S-Corr N/A; a file without MetaRM verdicts keeps no F-Score."""
    rows = [{"gt_label": "A", "model_pred": "B", "metarm_verdict": "SkippedLabelMismatch"},
            {"gt_label": "B", "model_pred": None, "metarm_verdict": "SkippedLabelMismatch"}]
    s = _score(tmp_path, fx.write(tmp_path / "r.jsonl", rows), "format=ralign")
    assert (s["l_acc"], s["s_corr"], s["f_score"]) == (0.0, None, 0.0)
    bare = _score(tmp_path, fx.write(tmp_path / "r.jsonl", [{k: r[k] for k in ("gt_label", "model_pred")} for r in rows]),
                  "format=ralign")
    assert bare["f_score"] is None
