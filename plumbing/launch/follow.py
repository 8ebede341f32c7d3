"""Copy a cluster job's TensorBoard scalars into its stage's MLflow run while it trains.

    python -m plumbing.launch.follow --tensorboard-dir DIR [--tracking-uri URI --run-id ID] [--every 60]

OpenRLHF logs to TensorBoard only; without this its curves reached MLflow once, when the job
ended, every point stamped with that moment. The job script runs this beside training (a
follower, stopped before the job's finishing step); that step (``plumbing.launch.finish``), or
the stage that ran the job itself, makes the last pass with the same :class:`ScalarBridge`.
The suite's own metrics in a reward module's ``extra_logs`` (``genrm_dynamics/*``) keep their
names (OpenRLHF writes them as ``train/...``), and each ``X_num`` / ``X_den`` pair also gives ``X``.

Each pass sends only points not yet in the run, each with its own step and the wall time the
event file recorded. MLflow's ``log_batch`` appends, so what was sent is read back from the run
(per tag, its latest ``(time, step)``) when a bridge first sees a tag and again after any failed
send: a restarted follower, or the finishing step after it, sends nothing twice. A failed pass
(MLflow unreachable) is counted, printed and tried again next round; the follower never fails
the job. Without ``--tracking-uri``/``--run-id`` they come from ``RALIGN_TRACKING_URI`` and
``RALIGN_RUN_ID`` (set by the stage that runs the job script itself, so the script carries no
run id and a dry run renders it the same).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ENV_URI, ENV_RUN = "RALIGN_TRACKING_URI", "RALIGN_RUN_ID"
Mark = Tuple[int, int]  # (wall time in ms, step): how far a tag's points are in the run


def batch_limit() -> int:
    """MLflow's cap on metrics per log_batch call (1000 in every release we know)."""
    try:
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        return int(MAX_METRICS_PER_BATCH)
    except ImportError:
        return 1000


def wall_ms(wall_time: float) -> int:
    """An event's wall time (seconds, a float) as MLflow's timestamp (integer milliseconds)."""
    return int(round(wall_time * 1000))


# Metric namespaces of the suite's own: OpenRLHF writes every info key (a reward module's
# extra_logs) as ``train/<key>``; these keep the name the local engine logs them under.
OWN_NAMESPACES = ("genrm_dynamics/",)


def run_tag(tag: str) -> str:
    """The MLflow name of a TensorBoard tag: ``train/genrm_dynamics/x`` -> ``genrm_dynamics/x``."""
    rest = tag[len("train/"):] if tag.startswith("train/") else None
    return rest if rest is not None and rest.startswith(OWN_NAMESPACES) else tag


def derive_ratio_points(scalars: Dict[str, List[Tuple[int, int, float]]]) -> Dict[str, List[Tuple[int, int, float]]]:
    """``scalars`` plus, for each ``X_num`` / ``X_den`` pair, ``X`` at every step both have
    (den > 0), stamped with the numerator's wall time (plumbing.engines.derive_ratios)."""
    from plumbing.engines import derive_ratios

    out = dict(scalars)
    for tag, points in scalars.items():
        if not tag.endswith("_num") or tag[:-4] + "_den" not in scalars:
            continue
        den = {step: v for _, step, v in scalars[tag[:-4] + "_den"]}
        derived = []
        for ms, step, num in points:
            if step in den:
                ratio = derive_ratios({tag: num, tag[:-4] + "_den": den[step]}).get(tag[:-4])
                derived += [(ms, step, ratio)] if ratio is not None else []
        if derived:
            out[tag[:-4]] = derived
    return out


class ScalarBridge:
    """TensorBoard scalars under ``logdir`` into one MLflow run, only what the run lacks.

    Event files are read on from where the previous pass stopped (one accumulator per folder,
    kept between passes); OpenRLHF opens a new folder on each (re)start of the job."""

    def __init__(self, tracking_uri: str, run_id: str, logdir: Path):
        self.tracking_uri, self.run_id, self.logdir = tracking_uri, run_id, Path(logdir)
        self._client: Any = None
        self._accumulators: Dict[Path, Any] = {}
        self._marks: Dict[str, Optional[Mark]] = {}  # tag -> latest point in the run (None: none there)
        self.sent = 0  # points sent by this bridge
        self.in_run = 0  # points of the event files the run holds, as of the last pass

    @property
    def client(self) -> Any:
        if self._client is None:  # made on first use: a store down at start is a failed pass, not a crash
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def scalars(self) -> Dict[str, List[Tuple[int, int, float]]]:
        """{tag: [(wall ms, step, value), ...]} from every event file under ``logdir``."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        for folder in sorted({p.parent for p in self.logdir.rglob("events.out.tfevents.*")}):
            if folder not in self._accumulators:
                self._accumulators[folder] = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        out: Dict[str, List[Tuple[int, int, float]]] = {}
        for acc in self._accumulators.values():
            acc.Reload()
            for tag in acc.Tags().get("scalars", []):
                out.setdefault(run_tag(tag), []).extend((wall_ms(e.wall_time), int(e.step), float(e.value))
                                                        for e in acc.Scalars(tag))
        return derive_ratio_points(out)

    def _mark(self, tag: str) -> Optional[Mark]:
        """The latest (time, step) of ``tag`` in the run, read from the run once per tag."""
        if tag not in self._marks:
            history = self.client.get_metric_history(self.run_id, tag)
            self._marks[tag] = max(((m.timestamp, m.step) for m in history), default=None)
        return self._marks[tag]

    def send_new(self) -> int:
        """Send the points the run does not hold yet, oldest first; return how many. On a
        failed send what was sent is forgotten (re-read from the run next pass: a send that
        failed on our side may have reached the store) and the error is raised."""
        from mlflow.entities import Metric

        scalars = self.scalars()
        try:
            new: List[Tuple[int, int, str, float]] = []
            for tag, points in scalars.items():
                mark = self._mark(tag)
                new += [(ms, step, tag, value) for ms, step, value in points if mark is None or (ms, step) > mark]
            new.sort()
            limit = batch_limit()
            for i in range(0, len(new), limit):
                batch = new[i : i + limit]
                metrics = [Metric(tag, value, ms, step) for ms, step, tag, value in batch]
                self.client.log_batch(self.run_id, metrics=metrics)
                for ms, step, tag, _ in batch:
                    self._marks[tag] = (ms, step)  # sorted: each is later than the tag's mark
                self.sent += len(batch)
        except Exception:
            self._marks.clear()
            raise
        self.in_run = sum(1 for tag, points in scalars.items() for ms, step, _ in points
                          if self._marks.get(tag) is not None and (ms, step) <= self._marks[tag])
        return len(new)


def follow(bridge: ScalarBridge, every: float, log=print) -> int:
    """Pass after pass every ``every`` seconds (0: one pass); a failed pass is retried next
    round. Returns after one pass or once the job that started it is gone; the job script
    stops it with TERM (its default action: a pass cut short is re-read, not resent)."""
    from plumbing.errors import first_line

    parent, failures = os.getppid(), 0
    while True:
        try:
            n = bridge.send_new()
            if n:
                log(f"[follow] sent {n} point(s) ({bridge.sent} since start)")
        except Exception as e:  # noqa: BLE001 - an outage must not stop training or this follower
            failures += 1
            log(f"[follow] pass failed ({failures} failed so far), "
                f"{'tried again in %gs' % every if every else 'not retried'}: {type(e).__name__}: {first_line(e)}")
        if not every:
            return 0
        time.sleep(every)
        if os.getppid() != parent:  # the job script is gone (killed): do not follow forever
            log("[follow] the job is gone: stopping")
            return 0


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tensorboard-dir", type=Path, required=True)
    p.add_argument("--tracking-uri", default=os.environ.get(ENV_URI))
    p.add_argument("--run-id", default=os.environ.get(ENV_RUN))
    p.add_argument("--every", type=float, default=0, help="seconds between passes (0: one pass)")
    a = p.parse_args(argv)
    if not a.tracking_uri or not a.run_id:
        print(f"[follow] no MLflow run given (--tracking-uri/--run-id or {ENV_URI}/{ENV_RUN}): nothing to follow")
        return 0
    # each round is a retry: MLflow's own retries (minutes with backoff by default) only delay it
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    return follow(ScalarBridge(a.tracking_uri, a.run_id, a.tensorboard_dir), a.every,
                  log=lambda msg: print(msg, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
