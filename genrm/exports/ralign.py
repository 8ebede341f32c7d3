"""R-Align's result files: ``result_metarm/<benchmark>__<model>_metarm_<metarm>.jsonl``, one
record per sample with ``gt_label``, ``model_pred``, ``model_judgment`` and the MetaRM's
``metarm_verdict`` / ``metarm_score`` / ``metarm_raw``, as its metarm_judge.py writes them and
its show_result.py reads them (benchmark and model come from the file name).

With position-swapped judging, ``model_pred`` is the verdict that counts under the run's
swap policy (the ground-truth label when the sample is label-correct, else the other one, or
none when the GenRM gave no verdict), so R-Align's L-Acc is the suite's. Unlabeled samples
are left out, and a label-correct sample without a golden judgment is written as a MetaRM
``CallFail`` (flagged ``meta.unjudged``), so its L-Acc, S-Corr and F-Score are the suite's.
A run without a MetaRM has no F-Score in the suite; show_result.py prints 0 for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from genrm.exports import ExportNames, file_name_part
from genrm.records import JudgedRow

OTHER = {"A": "B", "B": "A"}


def counted_pred(row: JudgedRow) -> Optional[str]:
    gt, pred = row.gt_label, row.model_pred
    if row.label_correct:
        return gt
    if pred is None and (row.swapped is None or row.swapped.pred is None):
        return None
    return OTHER.get(gt) if gt in OTHER else pred


def record(row: JudgedRow) -> Optional[Dict[str, Any]]:
    if row.gt_label is None:  # unlabeled: outside L-Acc here; R-Align's files always have a label
        return None
    out: Dict[str, Any] = {"id": row.id, "gt_label": row.gt_label, "model_judgment": row.model_judgment}
    if row.metarm is not None:
        out.update(metarm_raw=row.metarm.raw, metarm_verdict=row.metarm.verdict, metarm_score=row.metarm.score)
    out["model_pred"] = counted_pred(row)
    if row.label_correct and row.metarm_verdict is None:
        # label-correct, but no golden judgment to check the rationale against: outside the
        # F-Score here, and the one verdict show_result.py also leaves out of its denominator
        out["metarm_verdict"], out["meta"] = "CallFail", {"unjudged": True}
    if row.subset is not None:
        out["source"] = {"subset": row.subset}
    return out


def write(rows: Sequence[JudgedRow], folder: Path, names: ExportNames) -> List[Path]:
    path = (folder / "result_metarm" /
            f"{file_name_part(names.benchmark)}__{file_name_part(names.model)}_metarm_{file_name_part(names.metarm)}.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            rec = record(row)
            if rec is not None:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return [path]
