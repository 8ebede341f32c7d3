"""RationaleRM's matcher output files, as its metajudge_infer.py writes them and its
metajudge_analysis.py reads them: one record per sample with the matcher's answer in
``samples[0].generated_text`` and ``metadata`` holding ``human-checklist`` and
``<model>-checklist`` (the items the matcher saw) and the domain. Only samples that reached
the matcher are written (a failed matcher call as ``samples: []``, an error there as here):
those the suite passed over before matching (no golden checklist, a model list too long or
empty, a failed decomposition) are not matcher outputs, and the analysis would count a record
without a readable answer as an error before it looks at the lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from genrm.exports import ExportNames, file_name_part


def record(row: Dict[str, Any], model: str) -> Optional[Dict[str, Any]]:
    atomic = row.get("atomic")
    if not isinstance(atomic, dict) or not atomic.get("reference") or atomic.get("model_items") is None:
        return None
    answer = atomic.get("matcher_raw")
    return {"id": row.get("id"),
            "samples": [{"generated_text": answer}] if answer is not None else [],
            "metadata": {"human-checklist": atomic["reference"], f"{model}-checklist": atomic.get("model_items") or [],
                         "domain": row.get("subset")}}


def write(rows: Sequence[Dict[str, Any]], folder: Path, names: ExportNames) -> List[Path]:
    model = file_name_part(names.model)
    path = folder / "metajudge_output" / f"{model}-{file_name_part(names.benchmark)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            rec = record(row, model)
            if rec is not None:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return [path]
