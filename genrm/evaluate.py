"""genrm_eval: is a GenRM right, and right for the right reasons?

    python -m genrm.evaluate data=[helpsteer3,rm_bench] llm@genrm=openai genrm.base_url=http://h:8000/v1 \\
        genrm.model=genrm llm@metarm=openai metarm.base_url=http://j:8000/v1 metarm.model=judge

For each benchmark: the GenRM judges every pair (both orders with ``judging.swap=true``);
the MetaRM checks the rationale of label-correct samples against the golden judgment
(L-Acc, S-Corr, F-Score); the MetaJudge scores atomic consistency against golden
checklists (P/R/F1/AP). Writes ``DIR/<benchmark>/samples.jsonl`` (every raw output kept)
and ``DIR/summary.json``, prints a table and logs ``<benchmark>/<metric>`` to MLflow. Every
call goes through the cache: a rerun makes no calls, a killed run resumes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from genrm import metarm as mr
from genrm.judging import judge
from genrm.metajudge import evaluate_atomic
from genrm.parsing import parse_checklist
from genrm.prompts import JUDGE_SYSTEM
from genrm.records import JudgedRow, MetaRMRecord, PairwiseSample, SwappedJudgment
from genrm.settings import AtomicSettings, BootstrapSettings, JudgingSettings, MetaRMSettings
from genrm.summary import Tally
from plumbing.config.hydra_app import stage_main
from plumbing.config.schema import DataConfig, LLMConfig, Problems, StageConfig, check_produces
from plumbing.data import load_data
from genrm.exports import ExportNames, ExportSettings, export
from plumbing.failures import enforce
from plumbing.llm.registry import open_backend
from plumbing.llm.types import SamplingParams
from plumbing.report import table
from plumbing.tags import GENRM_RUN
from plumbing.tracking import StageRun


@dataclass
class GenRMEvalConfig(StageConfig):
    stage: str = "genrm_eval"
    data: Dict[str, DataConfig] = field(default_factory=dict)
    genrm: LLMConfig = field(default_factory=LLMConfig)
    metarm: Optional[LLMConfig] = None
    metajudge: Optional[LLMConfig] = None
    judging: JudgingSettings = field(default_factory=JudgingSettings)
    rationale: MetaRMSettings = field(default_factory=MetaRMSettings)
    atomic: AtomicSettings = field(default_factory=AtomicSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    export: ExportSettings = field(default_factory=ExportSettings)  # the papers' result files too
    limit: Optional[int] = None  # at most this many samples per benchmark
    genrm_tracking_uri: Optional[str] = None  # where genrm.model=runs:/<id> lives (default: this stage's store)

    def check(self) -> Problems:
        p = super().check()
        if not self.data:
            p.append(("data", "give at least one benchmark, e.g. data=helpsteer3 or data=[helpsteer3,rm_bench]"))
        if self.limit is not None and self.limit < 1:
            p.append(("limit", "must be >= 1"))
        p += check_produces(self.data, "pairwise")
        return p


SCHEMA = GenRMEvalConfig


def breakdowns(data: DataConfig) -> List[str]:
    """What a benchmark's summary is broken down by: the subset and what its format declares."""
    return ["subset", *data.declared("breakdowns", ())]


def _atomic_wanted(cfg: GenRMEvalConfig, sample: PairwiseSample, label_ok: Optional[bool]) -> bool:
    return bool(sample.gt_checklist) and (cfg.atomic.scope == "all" or bool(label_ok))


def evaluate_benchmark(cfg: GenRMEvalConfig, name: str, samples: List[PairwiseSample], backends: Dict[str, Any],
                       out: Path) -> Dict[str, Any]:
    """Judge, meta-judge and score one benchmark; write its samples.jsonl; return its summary."""
    t0 = time.monotonic()
    system = JUDGE_SYSTEM if cfg.judging.system_prompt is None else (cfg.judging.system_prompt or None)
    print(f"\n[genrm_eval] {name}: {len(samples)} samples")
    # MetaRM calls start as soon as a sample's verdict is known to be right (label gating).
    stream = None
    on_judgment = None
    if backends.get("metarm") is not None:
        stream = mr.MetaRMStream(backends["metarm"], SamplingParams.from_config(cfg.metarm.sampling),
                                 cfg.rationale.parse_retries)

        def on_judgment(i: int, j: Any) -> None:
            s = samples[i]
            if s.gt_judgment and j.label_correct(s.gt_label, cfg.judging.swap_policy):
                stream.submit(i, s, mr.rationale_of(j.raw, cfg.rationale.rationale))

    try:
        judgments = judge(backends["genrm"], samples, SamplingParams.from_config(cfg.genrm.sampling),
                          cfg.judging.swap, system, progress=True, on_judgment=on_judgment)
    finally:
        verdicts = stream.results() if stream is not None else {}
    rows: List[JudgedRow] = []
    label_ok: List[Optional[bool]] = []
    for s, j in zip(samples, judgments):
        ok = j.label_correct(s.gt_label, cfg.judging.swap_policy)
        label_ok.append(ok)
        swapped = SwappedJudgment(j.raw_swapped, j.pred_swapped, j.consistent, j.error_swapped) if j.swapped else None
        rows.append(JudgedRow(s.id, name, s.subset, s.gt_label, j.raw, j.pred, ok, j.error, j.truncated, swapped,
                              {k: v for k, v in s.meta.items() if k != "model_checklists"} if s.meta else None))

    # MetaRM: only label-correct samples that have a golden judgment were sent.
    metarm_calls = len(verdicts)
    if backends.get("metarm") is not None:
        for i, v in verdicts.items():
            rows[i].metarm = MetaRMRecord(v.raw, v.verdict, v.score)
        for i, s in enumerate(samples):
            if label_ok[i] is False and s.gt_judgment:
                rows[i].metarm = MetaRMRecord(None, mr.SKIPPED, None)

    # MetaJudge: atomic consistency against golden checklists.
    if backends.get("metajudge") is not None:
        wanted = [i for i, s in enumerate(samples) if _atomic_wanted(cfg, s, label_ok[i])]
        if wanted:
            rationales = [mr.rationale_of(judgments[i].raw, cfg.rationale.rationale) if judgments[i].raw else None
                          for i in wanted]
            given = [parse_checklist(r or "") for r in rationales] if cfg.atomic.model_items == "parse" else None
            results = evaluate_atomic(
                backends["metajudge"], [samples[i].gt_checklist for i in wanted], rationales,
                cfg.atomic.rules(), SamplingParams.from_config(cfg.metajudge.sampling), given=given,
                max_decomposed_items=cfg.atomic.max_decomposed_items, parse_retries=cfg.atomic.parse_retries,
                progress=True)
            for i, r in zip(wanted, results):
                rows[i].atomic = r.as_record(cfg.atomic.profile)  # with how its answer was read

    tally = tally_rows(rows, breakdowns(cfg.data[name]), metarm_ran=backends.get("metarm") is not None)
    summary = tally.summary(cfg.bootstrap.samples, cfg.bootstrap.seed, cfg.bootstrap.alpha)
    summary["metarm_calls"] = metarm_calls
    summary["metarm_calls_saved"] = (sum(1 for s in samples if s.gt_judgment) - metarm_calls
                                     if backends.get("metarm") is not None else 0)
    summary["genrm_call_failures"] = sum(1 for r in rows if r.call_failed)
    summary["genrm_no_verdict"] = sum(1 for r in rows if r.no_verdict)
    summary["genrm_truncated"] = sum(1 for r in rows if r.genrm_truncated)
    # L-Acc above is over every sample (a failed call is a wrong verdict); this one over those judged
    answered = [r for r in rows if r.gt_label is not None and not r.call_failed]
    summary["l_acc_answered"] = (sum(1 for r in answered if r.label_correct) / len(answered)) if answered else None
    write_jsonl(out / name / "samples.jsonl", [r.to_json() for r in rows])
    names = ExportNames(name, cfg.export.model or cfg.genrm.model,
                        cfg.export.metarm or (cfg.metarm.model if cfg.metarm is not None else "none"), cfg.atomic.rules())
    exported = export(cfg.export, rows, out / "export", names)
    if exported:
        summary["export"] = [str(p) for p in exported]
    summary["seconds"] = round(time.monotonic() - t0, 3)
    return summary


def tally_rows(rows: List[JudgedRow], names: List[str], metarm_ran: bool) -> Tally:
    """The summary's tally of judged rows, broken down by ``names`` (subset, the rows' meta)."""
    tally = Tally(names)
    tally.metarm_ran = metarm_ran
    for row in rows:
        keys = {n: (row.subset if n == "subset" else (row.meta or {}).get(n)) for n in names}
        tally.add_label(row.category(), keys)
        if row.swap_consistent is not None:
            tally.add_swap(bool(row.swap_consistent), keys)
        if row.atomic is not None:
            tally.add_atomic(*row.atomic.outcome(), keys)
    return tally


def write_jsonl(path: Path, rows: List[Dict[str, Any]]) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def flat_metrics(prefix: str, summary: Dict[str, Any]) -> Dict[str, float]:
    """MLflow metrics of one benchmark's summary: every number in it, under ``prefix/``."""
    from plumbing.tracking import numeric_metrics

    return numeric_metrics(summary, prefix)


def print_summary(results: Dict[str, Dict[str, Any]]) -> None:
    def cell(s: Dict[str, Any], k: str) -> str:
        v = s.get(k)
        if v is None:
            return "-"
        ci = s.get(f"{k}_ci")
        return f"{v:.3f}" + (f" [{ci[0]:.3f},{ci[1]:.3f}]" if ci else "")

    rows = [[name, s.get("n", s.get("valid", 0)), cell(s, "l_acc"), cell(s, "l_acc_answered"), cell(s, "s_corr"),
             cell(s, "f_score"), cell(s, "precision"), cell(s, "recall"), cell(s, "f1"), cell(s, "ap"),
             "-" if s.get("swap_consistency") is None else f"{s['swap_consistency']:.3f}",
             f"{s.get('genrm_call_failures', 0)}/{s.get('genrm_no_verdict', 0)}/{s.get('genrm_truncated', 0)}",
             f"{s.get('call_fail', 0)}/{s.get('parse_fail', 0)}"]
            for name, s in results.items()]
    print("\n" + table(["benchmark", "n", "L-Acc", "L-Acc answered", "S-Corr", "F-Score", "P", "R", "F1", "AP",
                        "swap cons.", "GenRM CallFail/NoVerdict/Truncated", "MetaRM CallFail/ParseFail"], rows))


def resolve_genrm_run(cfg: GenRMEvalConfig, tracker: StageRun) -> GenRMEvalConfig:
    """``genrm.model=runs:/<genrm_train run id>``: evaluate that run's checkpoint and link the
    run (tag ``genrm_run_id``), so analysis finds which trained GenRM these metrics belong to."""
    from dataclasses import replace

    from plumbing.models import resolve_run_ref
    from plumbing.tracking import tracking_uri

    path, run_id = resolve_run_ref(cfg.genrm.model, cfg.genrm_tracking_uri or tracking_uri(cfg.tracking.uri, cfg.output_dir))
    if run_id is None:
        return cfg
    tracker.set_tags({GENRM_RUN: run_id})
    return replace(cfg, genrm=replace(cfg.genrm, model=path))


def run(cfg: GenRMEvalConfig, tracker: StageRun) -> Dict[str, Any]:
    out = Path(cfg.output_dir)
    summary_path = out / "summary.json"
    if summary_path.exists():
        summary_path.unlink()  # a summary on disk always belongs to a finished run
    # Read and check every input before the first call is paid for.
    datasets: Dict[str, List[PairwiseSample]] = {}
    loads: Dict[str, Any] = {}
    for name, d in cfg.data.items():
        samples, report = load_data(d)
        datasets[name] = samples[: cfg.limit] if cfg.limit else samples
        loads[name] = report.as_dict()
    if cfg.dry_run:
        plan = {n: len(s) for n, s in datasets.items()}
        print(f"[genrm_eval] dry run: would judge {plan} with {cfg.genrm.label}:{cfg.genrm.model}")
        return {"dry_run": True, "samples": plan}

    cfg = resolve_genrm_run(cfg, tracker)
    results: Dict[str, Dict[str, Any]] = {}
    with _backends(cfg, out) as backends:
        for name, samples in datasets.items():
            results[name] = evaluate_benchmark(cfg, name, samples, backends, out)
            results[name]["load"] = loads[name]
            tracker.log_metrics(flat_metrics(name, results[name]))
            tracker.log_artifact(out / name / "samples.jsonl", name)
        calls = {role: getattr(b, "inner", b).stats.as_dict() for role, b in backends.items() if b is not None}
        backends_used = {role: b for role, b in backends.items() if b is not None}
    summary = {"benchmarks": results, "calls": calls,
               "models": {"genrm": cfg.genrm.model, "metarm": cfg.metarm.model if cfg.metarm else None,
                          "metajudge": cfg.metajudge.model if cfg.metajudge else None}}
    if cfg.metarm is not None:  # R-Align's scripts try an item up to ~150 times over their layers; the suite less
        summary["metarm_attempt_budget"] = {
            "http_retries": cfg.metarm.max_retries, "parse_retries": cfg.rationale.parse_retries,
            "calls_per_item_at_most": (cfg.metarm.max_retries + 1) * (cfg.rationale.parse_retries + 1)}
    summary["atomic_rules"] = cfg.atomic.describe()
    write_json(summary_path, summary)
    tracker.log_artifact(summary_path)
    print_summary(results)
    enforce({role: b.stats.as_dict() for role, b in backends_used.items()}, cfg.max_failure_rate, [summary_path])
    return summary


class _backends:
    """Open the GenRM, MetaRM and MetaJudge backends (sharing one when configured alike)."""

    def __init__(self, cfg: GenRMEvalConfig, out: Path):
        self.cfg, self.out = cfg, out
        self._stack: Any = None

    def __enter__(self) -> Dict[str, Any]:
        import contextlib

        self._stack = contextlib.ExitStack()
        opened: Dict[str, Any] = {}
        for role in ("genrm", "metarm", "metajudge"):
            llm = getattr(self.cfg, role)
            if llm is None:
                opened[role] = None
                continue
            same = next((r for r in opened if opened[r] is not None and getattr(self.cfg, r) == llm), None)
            opened[role] = opened[same] if same else self._stack.enter_context(open_backend(llm, self.out, role))
        return opened

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()


main = stage_main("genrm_eval")

if __name__ == "__main__":
    main()
