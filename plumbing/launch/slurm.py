"""sbatch scripts rendered from config, and their submission.

One template (``slurm/job.sbatch.j2``) serves every job the suite submits:
- a plain one-node stage job (a command),
- a Ray cluster job (head on the first node, workers on the rest, explicit CPU/GPU counts,
  a wait until every node joined, then the command; clean shutdown on exit and signals),
- a judge server job or section (``vllm serve`` on its own node, health wait, the endpoint
  written to a file that the command, or dependent jobs, read).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from plumbing.errors import SuiteError
from plumbing.shipped import shipped_dir

TEMPLATE_DIR = shipped_dir("slurm")  # the checkout's slurm/, or the copy a wheel ships


@dataclass
class JudgeSection:
    command: str  # the server command line (e.g. `vllm serve ...`)
    port: int
    endpoint_file: str
    nodes: int = 1
    startup_timeout_s: int = 1800
    description: str = "judge"
    devices: Optional[str] = None  # CUDA devices on the first node it shares with Ray (None: a node of its own)


@dataclass
class RaySection:
    num_cpus: int
    num_gpus: int
    port: int = 6379
    dashboard_port: int = 8265
    startup_timeout_s: int = 600
    devices: Optional[str] = None  # CUDA devices Ray may use on each node (None: all)


@dataclass
class JobSpec:
    name: str
    command: str
    job_dir: str  # where the job's files live (shared filesystem)
    description: str = ""
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: int = 0
    time: str = "01:00:00"
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    requeue: bool = False
    dependency: Optional[str] = None  # e.g. "afterok:123:124"
    setup: List[str] = field(default_factory=list)
    extra: Dict[str, str] = field(default_factory=dict)
    judge: Optional[JudgeSection] = None
    ray: Optional[RaySection] = None
    finish: Optional[str] = None  # run after the command with --exit-code RC (e.g. metric bridging)
    # beside the command: started with `--every SECONDS` before it, run once more after it
    # (e.g. plumbing.launch.prune keeping the newest checkpoints)
    sidecar: Optional[str] = None
    sidecar_every_s: int = 60
    # beside the command: started with `--every SECONDS` before it, stopped (TERM, waited for)
    # when it ends and before `finish`, which makes the last pass itself; two passes at once
    # would send twice (plumbing.launch.follow: training metrics into MLflow while the job runs)
    follower: Optional[str] = None
    follower_every_s: int = 60

    @classmethod
    def from_cluster(cls, slurm: Any, **kw: Any) -> "JobSpec":
        """Resources and site settings from a :class:`~plumbing.config.schema.SlurmConfig`."""
        base = dict(nodes=slurm.nodes, gpus_per_node=slurm.gpus_per_node, cpus_per_task=slurm.cpus_per_task,
                    mem_gb=slurm.mem_gb, time=slurm.time, partition=slurm.partition, account=slurm.account,
                    qos=slurm.qos, requeue=slurm.requeue, setup=list(slurm.setup), extra=dict(slurm.extra))
        if slurm.container:
            base["extra"].setdefault("container-image", slurm.container)
        base.update(kw)
        return cls(**base)


def render(spec: JobSpec) -> str:
    import jinja2

    # `{#` is bash (${#ARRAY[@]}), not a template comment
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, comment_start_string="<#--", comment_end_string="--#>")
    env.filters["q"] = lambda v: shlex.quote(str(v))
    values = dict(spec.__dict__)
    values["extra"] = sorted(spec.extra.items())
    values["log_dir"] = str(Path(spec.job_dir) / "logs")
    values["description"] = spec.description or spec.name
    values["bin_dir"] = str(Path(sys.executable).parent)
    return env.get_template("job.sbatch.j2").render(**values)


def write(spec: JobSpec, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Path(spec.job_dir) / "logs").mkdir(parents=True, exist_ok=True)  # Slurm opens --output before the job runs
    path.write_text(render(spec))
    path.chmod(0o755)
    return path


class SubmitError(SuiteError):
    pass


def submit(script: Path, dependency: Optional[str] = None, extra_args: Sequence[str] = ()) -> str:
    """``sbatch --parsable`` the script; return the job id."""
    if shutil.which("sbatch") is None:
        raise SubmitError("sbatch not found: run on a Slurm login node, or use cluster=local")
    cmd = ["sbatch", "--parsable", *extra_args]
    if dependency:
        cmd.append(f"--dependency={dependency}")
    proc = subprocess.run(cmd + [str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SubmitError(f"sbatch {script} failed ({proc.returncode}): {proc.stderr.strip()}")
    match = re.match(r"^(\d+)", proc.stdout.strip())
    if not match:
        raise SubmitError(f"sbatch gave no job id: {proc.stdout!r}")
    return match.group(1)


def shell_join(argv: Sequence[str]) -> str:
    """A command line the script can run, quoted, one flag per line for reading."""
    parts = [shlex.quote(a) for a in argv]
    lines, current = [], []
    for p in parts:
        if p.startswith("--") and current:
            lines.append(" ".join(current))
            current = []
        current.append(p)
    lines.append(" ".join(current))
    return " \\\n    ".join(lines)
