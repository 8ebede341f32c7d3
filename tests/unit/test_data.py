"""Record files: bad input names file, line and field; skip mode counts."""

from __future__ import annotations

import pandas as pd
import pytest

from plumbing.data import FieldError, InputError, chat_messages, load_records, require


def _conv(rec):
    return {"messages": chat_messages(require(rec, "messages", list)), "label": _label(rec)}


def _label(rec):
    label = require(rec, "label")
    if label not in ("A", "B"):
        raise FieldError("label", f"must be A or B, got {label!r}")
    return label


GOOD = '{"messages": [{"role": "user", "content": "hi"}], "label": "A"}'


def _write(tmp_path, *lines, name="d.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(
    "bad,field",
    [
        ('{"messages": [{"role": "user", "content": "hi"}], "label": "C"}', "label"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "label"),
        ('{"messages": [{"role": "robot", "content": "hi"}], "label": "A"}', "messages[0].role"),
        ('{"messages": [], "label": "A"}', "messages"),
        ('{"messages": "hi", "label": "A"}', "messages"),
        ('{"messages": [{"role": "user", "content": "hi"}], "label": "A"', "<json>"),
        ('[1, 2]', "<record>"),
    ],
)
def test_bad_record_names_file_line_and_field(tmp_path, bad, field):
    path = _write(tmp_path, GOOD, bad, GOOD)
    with pytest.raises(InputError) as err:
        load_records(path, _conv)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 2, field)
    assert f"{path}:2: field '{field}'" in str(err.value)


def test_skip_mode_skips_and_counts_bad_records(tmp_path):
    path = _write(tmp_path, GOOD, '{"broken', GOOD, '{"messages": [], "label": "A"}', "", GOOD)
    recs, report = load_records(path, _conv, on_bad_record="skip")
    assert len(recs) == 3 and report.read == 3 and report.skipped == 2
    assert any(":2:" in p for p in report.problems) and any(":4:" in p for p in report.problems)


def test_empty_or_missing_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no usable records"):
        load_records(_write(tmp_path, ""), _conv)
    with pytest.raises(InputError, match="file not found"):
        load_records(tmp_path / "nope.jsonl", _conv)
    with pytest.raises(InputError, match="no usable records .2 bad records skipped"):
        load_records(_write(tmp_path, "{", "[]"), _conv, on_bad_record="skip")


def test_parquet_and_json_files_and_limit(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}], "label": "AB"[i % 2]} for i in range(5)]
    pq = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    recs, _ = load_records(pq, lambda r: {**r, "messages": chat_messages(list(r["messages"]))})
    assert [r["messages"][0]["content"] for r in recs] == [f"q{i}" for i in range(5)]
    js = tmp_path / "d.json"
    js.write_text(pd.DataFrame(rows).to_json(orient="records"))
    recs, _ = load_records(js, _conv, limit=2)
    assert len(recs) == 2


def test_json_syntax_errors_name_the_real_line_and_column(tmp_path):
    from plumbing.data import InputError, iter_raw

    whole = tmp_path / "d.json"
    whole.write_text('[{"id": "x"},\n {"id": "y", "a": 1,, "b": 2}]\n')
    with pytest.raises(InputError, match=r"d.json:2: .*\(column 21\)"):
        list(iter_raw(whole))
    lines = tmp_path / "d.jsonl"
    lines.write_text('{"id": "x"}\n  {"id": "é" "a": 1}\n')
    [(_, _, ok), (line, _, err)] = list(iter_raw(lines))
    assert ok is None and line == 2 and "(column 14)" in str(err)
