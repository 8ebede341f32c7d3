"""Plain-text and markdown tables for summaries printed (and written) at the end of a stage
or pipeline."""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells: List[List[str]] = [[str(h) for h in headers]] + [[fmt(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells[1:]]
    return "\n".join(out)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats with 3 decimals, NaN and None as "-"."""
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]) + "\n"


def where_to_look(stage: str, output_dir: str, run_id: Optional[str], uri: str, checkpoint: Optional[str] = None,
                  pending: bool = False, experiment_id: Optional[str] = None) -> str:
    """The last lines of a stage: its folder, its MLflow run (the id a next command names as
    ``runs:/<id>``), its checkpoint, and the command that opens the store. A password in the
    tracking URI is masked."""
    from plumbing.secrets import redact_override_text

    rows = [("outputs", output_dir)]
    if run_id:
        rows.append(("MLflow run", run_id))
    if checkpoint:
        rows.append(("checkpoint", checkpoint + (" (when the job has run)" if pending else "")))
    if run_id and uri.startswith(("http://", "https://")):  # a tracking server: the run's page
        rows.append(("browse", f"{redact_override_text(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"))
    elif run_id:
        rows.append(("browse", f"mlflow ui --backend-store-uri {redact_override_text(uri)}"))
    return "\n".join(f"[{stage}] {k + ':':<12}{v}" for k, v in rows)
