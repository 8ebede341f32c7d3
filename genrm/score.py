"""genrm_score: metrics from records that are already judged (no model is called).

    python -m genrm.score input=results.jsonl output_dir=DIR [format=auto|ralign|rationalerm|suite] [model=NAME]

Formats:
- ``ralign``: R-Align result files: ``gt_label``, ``model_pred`` (or ``model_judgment``, then
  parsed), optional ``metarm_verdict`` (Correct / Incorrect / CallFail / ParseFail /
  SkippedLabelMismatch), ``source.subset``.
- ``rationalerm``: RationaleRM matcher output: ``samples[0].generated_text`` holds the
  ``- R<i>@S<j>: <score>`` lines, ``metadata`` the ``human-checklist`` and
  ``<model>-checklist`` (``model=`` names it when there are several).
- ``suite``: this suite's ``samples.jsonl`` (label fields and the ``atomic`` record).
- ``auto``: decided per record from its fields.
Writes ``DIR/summary.json`` (fractions in [0, 1], counts, bootstrap intervals, a breakdown
by subset or domain) and logs it to MLflow. Records stream through a tally, so a million
records fit in memory and score in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from omegaconf import MISSING

from genrm.evaluate import flat_metrics, print_summary, write_json
from genrm.exports import ExportNames, ExportSettings, export
from genrm.metarm import SKIPPED
from genrm.metrics import WRONG, AtomicRules, atomic_scores, category, prepare_model_items
from genrm.parsing import check_matches, parse_verdict, read_matches
from genrm.records import JudgedRow, label_field
from genrm.settings import AtomicSettings, BootstrapSettings
from genrm.summary import Tally
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import Problems, StageConfig, check_choice
from plumbing.data import FieldError, InputError, count_lines, iter_jsonl_range, iter_raw, split_jsonl
from plumbing.errors import SuiteError
from plumbing.tracking import StageRun

FORMATS = ("auto", "ralign", "rationalerm", "suite")
_VERDICTS = {"Correct", "Incorrect", "CallFail", "ParseFail", SKIPPED}


@dataclass
class GenRMScoreConfig(StageConfig):
    stage: str = "genrm_score"
    input: str = MISSING
    format: str = "auto"  # auto (per record) | ralign | rationalerm | suite
    checklist_model: Optional[str] = None  # rationalerm: whose `<model>-checklist` was matched (`model=NAME`)
    benchmark: Optional[str] = None  # metric prefix in MLflow; default: the input file's name
    on_bad_record: str = "error"
    atomic: AtomicSettings = field(default_factory=AtomicSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    export: ExportSettings = field(default_factory=ExportSettings)  # the suite's records in a paper's format

    def check(self) -> Problems:
        p = super().check()
        check_choice(p, "format", self.format, FORMATS)
        check_choice(p, "on_bad_record", self.on_bad_record, ("error", "skip"))
        return p


SCHEMA = GenRMScoreConfig
# the skip reasons RationaleRM's analysis counts as errors (it passes over too long / empty lists silently)
ERROR_REASONS = ("matcher_invalid", "matcher_call_failed", "record_incomplete")
# `model=NAME` on the command line: the checklist's model, not the `model/` config group
KEY_ALIASES = {"model": "checklist_model"}


def detect(rec: Dict[str, Any]) -> str:
    if "samples" in rec and "metadata" in rec:
        return "rationalerm"
    if JudgedRow.looks_like(rec):
        return "suite"
    if "model_pred" in rec or "model_judgment" in rec:
        return "ralign"
    raise FieldError("<record>", "cannot tell the format: no model_pred/model_judgment, samples/metadata or atomic")


def detect_or_none(rec: Dict[str, Any]) -> Optional[str]:
    try:
        return detect(rec)
    except FieldError:
        return None


def _subset(rec: Dict[str, Any]) -> Optional[str]:
    if rec.get("subset") is not None:
        return str(rec["subset"])
    source = rec.get("source")
    if isinstance(source, dict) and source.get("subset") is not None:
        return str(source["subset"])
    return str(source) if isinstance(source, str) else None


def label_record(rec: Dict[str, Any]) -> Tuple[Optional[int], Optional[bool]]:
    """(category, swap consistency or None) of an R-Align result row."""
    gt = label_field(rec.get("gt_label"), "gt_label")  # the benchmarks' rule: case and spaces do not matter
    pred = rec.get("model_pred") if "model_pred" in rec else parse_verdict(rec.get("model_judgment"))
    if pred not in ("A", "B", None, ""):
        raise FieldError("model_pred", f"must be 'A', 'B' or empty, got {pred!r}")
    correct = pred == gt
    verdict = rec.get("metarm_verdict")
    if verdict is not None and verdict not in _VERDICTS:
        raise FieldError("metarm_verdict", f"must be one of {sorted(_VERDICTS)}, got {verdict!r}")
    if correct and verdict == SKIPPED:
        raise FieldError("metarm_verdict", "SkippedLabelMismatch on a sample whose label is correct")
    if not correct:
        return WRONG, rec.get("swap_consistent")
    return category(True, verdict), rec.get("swap_consistent")


def rationalerm_record(rec: Dict[str, Any], model: Optional[str], rules: AtomicRules
                       ) -> Tuple[Optional[Dict[str, float]], Optional[str], Optional[str]]:
    """(scores or None, skip reason, domain) of one RationaleRM matcher-output record."""
    meta = rec.get("metadata")
    if not isinstance(meta, dict):
        if not rules.errors_first:
            raise FieldError("metadata", "expected an object")
        meta = None  # counted as an incomplete record below, after the answer is read
    domain = (meta or {}).get("domain", rec.get("domain"))
    samples = rec.get("samples")
    if rules.failed_call == "error" and not samples:  # the matcher gave no answer: an error, counted
        return None, "matcher_call_failed", domain
    if not isinstance(samples, list) or not samples or not isinstance(samples[0], dict):
        raise FieldError("samples", "expected a list whose first item has generated_text "
                                    "(atomic.failed_call=error counts an empty one and goes on)")
    text = samples[0].get("generated_text")
    if not isinstance(text, str):
        raise FieldError("samples[0].generated_text", "expected text")
    read = read_matches(text, rules.match)
    if rules.errors_first and not read.ok:  # RationaleRM's analysis reads the answer before the lists
        return None, "matcher_invalid", domain
    try:  # the reference looks at an empty reference list only after the model list's length
        human, items = _checklists(meta, model, empty_ok=rules.errors_first)
    except FieldError:
        if rules.errors_first:  # a record without its lists: an error there, counted, not a refused file
            return None, "record_incomplete", domain
        raise
    shown, reason = prepare_model_items(items, rules)
    if shown is None:
        return None, reason, domain
    if not read.ok:
        return None, "matcher_invalid", domain
    if not human:  # no reference item to score: an error, as in the reference
        return None, "record_incomplete", domain
    parsed = check_matches(read.matches, len(human), len(shown), rules.match)
    if not parsed.ok:
        return None, "matcher_invalid", domain
    return atomic_scores(parsed.matches, len(human), len(shown), rules.match.zero_in_ap), None, domain


def _checklists(meta: Optional[Dict[str, Any]], model: Optional[str], empty_ok: bool = False
                ) -> Tuple[List[Any], List[Any]]:
    """(human checklist, model checklist) of a matcher-output record's metadata."""
    if meta is None:
        raise FieldError("metadata", "expected an object")
    human = meta.get("human-checklist")
    if not isinstance(human, list) or not (human or empty_ok):
        raise FieldError("metadata.human-checklist", "expected a non-empty list")
    if model is None:
        names = [k for k in meta if k.endswith("-checklist") and k != "human-checklist"]
        if len(names) != 1:
            raise FieldError("metadata", f"found model checklists {names}: give model=NAME")
        key = names[0]
    else:  # as the reference finds it: whatever the case
        key = next((k for k in meta if k.lower() == f"{model}-checklist".lower()), f"{model}-checklist")
    items = meta.get(key)
    if not isinstance(items, list):
        raise FieldError(f"metadata.{key}", "missing or not a list")
    return human, items


@dataclass
class _Part:
    """What one reader found in its part of the input."""

    tally: Tally
    formats: Dict[str, int]
    lines: int = 0  # lines in the part, to number the next part's lines
    skipped: int = 0
    problems: List[Tuple[int, str]] = field(default_factory=list)  # (line in part, message)
    error: Optional[Tuple[int, str, str]] = None  # first bad record: (line in part, field, message)


def _score_records(cfg: GenRMScoreConfig, rows: Iterator[Tuple[int, Any, Optional[InputError]]]) -> _Part:
    rules = cfg.atomic.rules()
    part = _Part(Tally(["subset"]), {})
    tally, formats = part.tally, part.formats
    for line, rec, err in rows:
        part.lines = line
        try:
            if err is not None and cfg.format == "rationalerm" and rules.errors_first:
                # RationaleRM's analysis passes over a line that is not JSON without counting it
                part.skipped += 1
                if len(part.problems) < 20:
                    part.problems.append((line, "not JSON: passed over, as the reference analysis does"))
                continue
            if err is not None:
                raise FieldError(err.field, str(err).split(": ", 2)[-1])
            if not isinstance(rec, dict):
                raise FieldError("<record>", "expected an object")
            fmt = detect(rec) if cfg.format == "auto" else cfg.format
            if fmt == "rationalerm":
                scores, reason, domain = rationalerm_record(rec, cfg.checklist_model, rules)
                tally.add_atomic(scores, reason, {"subset": domain})
            elif fmt == "suite":
                row = JudgedRow.from_json(rec)
                keys = {"subset": None if row.subset is None else str(row.subset)}
                if row.atomic is not None:
                    tally.add_atomic(*row.atomic.outcome(), keys)
                tally.add_label(row.category(), keys)
                if row.swap_consistent is not None:
                    tally.add_swap(bool(row.swap_consistent), keys)
                if row.metarm_verdict not in (None, SKIPPED):
                    tally.metarm_ran = True
            else:
                keys = {"subset": _subset(rec)}
                cat, consistent = label_record(rec)
                tally.add_label(cat, keys)
                if consistent is not None:
                    tally.add_swap(bool(consistent), keys)
                # an R-Align file's SkippedLabelMismatch is its MetaRM step's answer too (F-Score 0 of n)
                if rec.get("metarm_verdict"):
                    tally.metarm_ran = True
            formats[fmt] = formats.get(fmt, 0) + 1
        except FieldError as e:
            message = str(e).split(": ", 1)[-1]
            if cfg.on_bad_record != "skip":
                part.error = (line, e.field, message)
                break
            part.skipped += 1
            if len(part.problems) < 20:
                part.problems.append((line, f"field '{e.field}': {message}"))
    return part


def _score_range(job: Tuple[GenRMScoreConfig, int, int]) -> _Part:
    cfg, start, end = job
    part = _score_records(cfg, iter_jsonl_range(cfg.input, start, end))
    if part.error is None:
        part.lines = count_lines(cfg.input, start, end)
    return part


PARALLEL_BYTES = 32 * 2**20  # JSONL inputs larger than this are read by one process per core


def score_file(cfg: GenRMScoreConfig) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Tally the input (large JSONL files in parallel parts); return (summary, record report)."""
    path = Path(cfg.input)
    if not path.is_file():
        raise InputError(path, 0, "-", "file not found")
    workers = min(os.cpu_count() or 1, 8)
    if path.suffix == ".jsonl" and path.stat().st_size > PARALLEL_BYTES and workers > 1:
        import multiprocessing as mp

        jobs = [(cfg, a, b) for a, b in split_jsonl(path, workers)]
        with mp.get_context("fork").Pool(len(jobs)) as pool:
            parts = pool.map(_score_range, jobs)
    else:
        parts = [_score_records(cfg, iter_raw(path))]
    tally, formats, report = Tally(["subset"]), {}, {"read": 0, "skipped": 0, "problems": []}
    offset = 0
    for part in parts:
        if part.error is not None:  # the first bad record of the file, in file order
            line, name, message = part.error
            raise InputError(path, offset + line, name, message)
        tally.merge(part.tally)
        for fmt, n in part.formats.items():
            formats[fmt] = formats.get(fmt, 0) + n
        report["skipped"] += part.skipped
        report["problems"] += [f"{path}:{offset + line}: {msg}" for line, msg in part.problems][:20 - len(report["problems"])]
        offset += part.lines
    report["read"], report["formats"] = sum(formats.values()), formats
    if not report["read"]:
        raise InputError(path, 0, "-", "no usable records" + (f" ({report['skipped']} skipped)" if report["skipped"] else ""))
    return tally.summary(cfg.bootstrap.samples, cfg.bootstrap.seed, cfg.bootstrap.alpha), report


def suite_rows_of(path: str) -> List[JudgedRow]:
    """The file's samples.jsonl rows; a bad one (scored already: refused, or passed over with
    on_bad_record=skip) is left out."""
    rows = []
    for _, rec, err in iter_raw(path):
        if err is None and isinstance(rec, dict) and detect_or_none(rec) == "suite":
            try:
                rows.append(JudgedRow.from_json(rec))
            except FieldError:
                pass
    return rows


def run(cfg: GenRMScoreConfig, tracker: StageRun) -> Dict[str, Any]:
    out = Path(cfg.output_dir)
    summary_path = out / "summary.json"
    if summary_path.exists():
        summary_path.unlink()
    summary, report = score_file(cfg)
    summary.update(input=str(Path(cfg.input).resolve()), records=report)
    if "rationalerm" in report.get("formats", {}):  # which reading of the matcher answers made these numbers
        summary["atomic_rules"] = cfg.atomic.describe()
        by_reason = summary.get("skipped_by_reason") or {}
        summary["error_samples"] = sum(by_reason.get(r, 0) for r in ERROR_REASONS)  # RationaleRM's error count
    name = cfg.benchmark or Path(cfg.input).stem
    if cfg.export.format is not None:
        suite_rows = suite_rows_of(cfg.input)
        if not suite_rows:
            raise SuiteError(f"{cfg.input}: export.format={cfg.export.format} writes this suite's samples.jsonl "
                             "records in a paper's format; this file has none")
        by_benchmark: Dict[str, List[JudgedRow]] = {}
        for row in suite_rows:  # one file per benchmark, as the papers' scripts name them
            by_benchmark.setdefault(str(row.benchmark or name), []).append(row)
        summary["export"] = [str(p) for bench, rows in by_benchmark.items()
                             for p in export(cfg.export, rows, Path(cfg.output_dir) / "export",
                                             ExportNames(bench, cfg.export.model or "genrm", cfg.export.metarm or
                                                         ("metarm" if any(r.metarm_verdict for r in rows)
                                                          else "none"), cfg.atomic.rules()))]
    write_json(summary_path, summary)
    tracker.log_metrics(flat_metrics(name, summary))
    tracker.log_artifact(summary_path)
    print_summary({name: summary})
    return summary


main = stage_main("genrm_score")

if __name__ == "__main__":
    main()
