"""The cluster presets' command lines and job scripts, built offline: each preset's dry run
with its data pointed at small local files in the hub data's format."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Sequence

import genrm_fixtures as fx
from plumbing.config.hydra_app import compose, execute, finalize
from plumbing.config.validate import ConfigError
from plumbing.engines.openrlhf_plan import PLACEHOLDERS, cluster_presets

USER_VALUES = PLACEHOLDERS  # what a user gives on the command line for presets that leave it open


def local_data(obj, tmp: Path) -> List[str]:
    """Point each data set of a preset at a small local file in its format (nothing from the hub)."""
    ralign = fx.write(tmp / "ralign.jsonl", fx.ralign_records())
    files = {"genrm.benchmarks.ralign_bmk.RAlignFormat": ralign,
             "policy_rlhf.prompts.from_pairs.PromptsFromPairs": ralign,
             "genrm.benchmarks.rationalerm.RationaleRMFormat":
                 fx.write(tmp / "rrm.jsonl", fx.rationalerm_records()[:2])}  # labelled
    return [f"data.{name}.path={files[d._target_]}" for name, d in obj.data.items() if d._target_ in files]


def dry_run(preset: str, stage: str, tmp: Path, extra: Sequence[str] = ()) -> Dict:
    """The preset's dry run summary (command line, script, plan) with ``extra`` overrides."""
    base = [f"experiment={preset}", f"output_dir={tmp / preset}", "dry_run=true", *extra]
    try:
        obj, _ = compose(stage, base)
    except ConfigError:
        base += USER_VALUES[stage]
        obj, _ = compose(stage, base)
    obj, cfg = finalize(*compose(stage, base + local_data(obj, tmp / "data")))
    return execute(stage, obj, cfg)


def command_lines(tmp: Path) -> Dict[str, List[str]]:  # noqa: D103 - each preset's OpenRLHF argv
    return {preset: dry_run(preset, stage, tmp)["openrlhf_args"] for preset, stage in cluster_presets()}


__all__ = ["cluster_presets", "command_lines", "dry_run", "local_data", "parse", "ray_cluster", "start"]


def ray_cluster(script: str) -> Dict[str, int]:
    """The Ray cluster a rendered job script starts: its nodes (the allocation less a judge's
    own node) and what each `ray start` offers."""
    nodes = int(re.search(r"^#SBATCH --nodes=(\d+)$", script, re.M).group(1))
    judge_own_node = "JUDGE_NODE=${NODES[-1]}" in script
    gpus = re.search(r"ray start --head .*?--num-gpus=(\d+)", script, re.S).group(1)
    cpus = re.search(r"ray start --head .*?--num-cpus=(\d+)", script, re.S).group(1)
    return {"nodes": nodes - int(judge_own_node), "gpus_per_node": int(gpus), "cpus_per_node": int(cpus)}


HELPERS = Path(__file__).resolve().parent


def parse(argvs) -> list:
    """OpenRLHF's real parser on each command line (tests/helpers/openrlhf_parse.py)."""
    return run_helper(HELPERS / "openrlhf_parse.py", argvs)


def start(cases) -> list:
    """OpenRLHF's real start-up on each case ({argv, nodes, gpus_per_node, cpus_per_node}),
    on a simulated Ray cluster of that size (tests/helpers/openrlhf_startup.py)."""
    return run_helper(HELPERS / "openrlhf_startup.py", cases)


def run_helper(script: Path, payload) -> list:
    """Run one of the OpenRLHF helper scripts in its own interpreter (it swaps modules in
    sys.modules): the payload as JSON on stdin, one JSON result per line back."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(script)], input=json.dumps(payload), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.strip()
    return json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines() if x.startswith("{")]
