"""RationaleRM's matcher output files, as its metajudge_infer.py writes them and its
metajudge_analysis.py reads them: one record per sample with the matcher's answer in
``samples[0].generated_text`` and ``metadata`` holding ``human-checklist`` and
``<model>-checklist`` (the items the matcher saw) and the domain. Only samples that reached
the matcher are written (a failed matcher call as ``samples: []``, an error there as here):
those the suite passed over before matching (no golden checklist, a model list too long or
empty, a failed decomposition) are not matcher outputs, and the analysis would count a record
without a readable answer as an error before it looks at the lists. The answer is written as
the run read it (its ``atomic`` rules), so the analysis gives the run's numbers whatever
profile the run used; the matcher's own text is kept as ``matcher_raw``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from genrm.exports import ExportNames, file_name_part
from genrm.metrics import AtomicRules
from genrm.parsing import RESULT_END, RESULT_START, check_matches, read_matches
from genrm.records import JudgedRow


def canonical(answer: Optional[str], n: int, m: int, rules: AtomicRules) -> str:
    """The matcher's answer as the run read it, in the form RationaleRM's analysis reads the
    same way: one ``- R<i>@S<j>: <score>`` line per reference item between the markers (an
    item the run left out of AP, scored 0, points at S0), or no result block at all for an
    answer the run could not use. The raw answer is kept beside it (``matcher_raw``)."""
    read = read_matches(answer, rules.match)
    parsed = check_matches(read.matches, n, m, rules.match) if read.ok else read
    if not parsed.ok:
        return f"(the suite could not read this answer: {parsed.error})"
    lines = [f"- R{i}@S{j if score > 0 or rules.match.zero_in_ap else 0}: {score:g}" for i, j, score in parsed.matches]
    return f"{RESULT_START}\n" + "\n".join(lines) + f"\n{RESULT_END}"


def rules_of(row: JudgedRow, default: Optional[AtomicRules]) -> AtomicRules:
    """The rules the row's matcher answer was read with (its run's profile, kept in the row)."""
    from genrm.settings import AtomicSettings

    profile = row.atomic.profile if row.atomic is not None else None
    if profile is not None:
        return AtomicSettings(profile=profile).rules()
    return default or AtomicRules()


def record(row: JudgedRow, model: str, rules: AtomicRules) -> Optional[Dict[str, Any]]:
    atomic = row.atomic
    if atomic is None or not atomic.reference or atomic.model_items is None:
        return None
    answer = atomic.matcher_raw
    items = atomic.model_items
    sample = {"generated_text": canonical(answer, len(atomic.reference), len(items), rules), "matcher_raw": answer}
    return {"id": row.id, "samples": [sample] if answer is not None else [],
            "metadata": {"human-checklist": atomic.reference, f"{model}-checklist": items,
                         "domain": row.subset}}


def write(rows: Sequence[JudgedRow], folder: Path, names: ExportNames) -> List[Path]:
    model = file_name_part(names.model)
    path = folder / "metajudge_output" / f"{model}-{file_name_part(names.benchmark)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            rec = record(row, model, rules_of(row, names.rules))
            if rec is not None:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return [path]
