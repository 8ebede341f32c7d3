"""The built wheel runs the stages on its own: a file a stage reads at run time that the wheel
lacks (configs, assets, the sbatch template), or a lookup that only works in a checkout, fails
here.

The wheel is built offline from a copy of the checkout's files, installed with --no-deps into a
fresh virtual environment whose dependencies are this environment's (a .pth line, appended
after the fresh site-packages, so the wheel's packages win), and run from a folder outside the
checkout with neither PYTHONPATH nor RALIGN_CONF_DIR set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SUITE = sorted({p.split(".")[0] for p in PYPROJECT["tool"]["setuptools"]["packages"]})
VERSION = PYPROJECT["project"]["version"]


def _run(args: List[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy: building in place writes build/ and *.egg-info into a checkout that
    others may be building from at the same time. Offline, with this environment's setuptools."""
    pytest.importorskip("setuptools", minversion="69")
    src = tmp_path_factory.mktemp("src")
    for name in sorted(set(SUITE) | set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"]):
        shutil.copy2(REPO / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", str(dist)])
    [whl] = dist.glob("ralign_suite-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh environment with only the wheel installed; the dependencies (and their console
    scripts, e.g. `transformers serve`) are borrowed from this one instead of reinstalled."""
    env = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "-q", str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    borrowed = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "zz_borrowed_dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed))
    here = Path(sys.executable).parent
    for script in here.iterdir():
        target = env / "bin" / script.name
        if target.exists() or script.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as f:
            first = f.readline()
        if first.startswith(f"#!{here}/python".encode()):
            target.write_bytes(f"#!{python}\n".encode() + script.read_bytes()[len(first):])
            target.chmod(0o755)
    return env


@pytest.fixture
def run_outside(venv, tmp_path):
    """Run a command of the installed suite from a folder outside the checkout."""
    here = Path(sys.executable).parent.resolve()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RALIGN_CONF_DIR", "VIRTUAL_ENV")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != here]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    work = tmp_path / "work"
    work.mkdir()
    assert REPO not in work.resolve().parents

    def run(args: List[str], timeout: float = 600) -> subprocess.CompletedProcess:
        exe = venv / "bin" / args[0]
        return subprocess.run([str(exe), *args[1:]], cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout)

    run.work = work
    return run


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_the_wheel_holds_the_code_configs_assets_template_and_type_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # every file of the packages (code, their assets/, py.typed), the configs, the template
    expected = {str(p.relative_to(REPO)) for top in SUITE for p in (REPO / top).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    expected |= {f"plumbing/_conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")}
    expected |= {"plumbing/_slurm/job.sbatch.j2", *(f"{top}/py.typed" for top in SUITE)}
    assert "toy_world/assets/toy_test.jsonl" in expected
    assert sorted(expected - names) == []
    # no generic top-level `conf` or `slurm` for site-packages: only the suite's own packages
    assert {n.split("/")[0] for n in names} == {*SUITE, f"ralign_suite-{VERSION}.dist-info"}


def test_the_fresh_environment_runs_the_wheel_not_the_checkout(venv, run_outside, tmp_path):
    probe = (
        "import json, sys, plumbing, genrm, policy_rlhf, downstream_eval, analysis, toy_world\n"
        "from plumbing.config.hydra_app import conf_dir\n"
        "from plumbing.shipped import asset_path\n"
        "from plumbing.launch.slurm import JobSpec, TEMPLATE_DIR, render\n"
        f"script = render(JobSpec(name='probe', command='true', job_dir={str(tmp_path / 'job')!r}))\n"
        "print(json.dumps({'modules': [m.__file__ for m in (plumbing, genrm, policy_rlhf, downstream_eval, analysis, toy_world)],"
        " 'conf': str(conf_dir()), 'template': str(TEMPLATE_DIR), 'asset': asset_path('toy_world/assets/toy_test.jsonl'),"
        " 'script': script, 'path': sys.path}))\n"
    )
    r = run_outside(["python", "-c", probe])
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    for path in (*got["modules"], got["conf"], got["template"], got["asset"]):
        assert _inside(path, venv) and not _inside(path, REPO), path
    assert not any(p and _inside(p, REPO) for p in got["path"][:-1])  # only the borrowed dependencies, last
    assert got["script"].startswith("#!") and "true" in got["script"]
    site = Path(got["modules"][0]).parents[1]
    assert not (site / "conf").exists() and not (site / "slurm").exists()

    version = run_outside(["ralign", "--version"])
    assert (version.returncode, version.stdout) == (0, f"ralign {VERSION}\n")


def test_genrm_score_from_the_wheel(run_outside):
    rows = [{"id": i, "gt_label": gt, "model_pred": pred, "model_judgment": f"... \\boxed{{{pred}}}",
             "metarm_verdict": verdict}
            for i, (gt, pred, verdict) in enumerate([("A", "A", "Correct"), ("B", "B", "Incorrect"),
                                                     ("A", "B", "SkippedLabelMismatch"), ("B", "B", "Correct")])]
    src = run_outside.work / "results.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_outside(["python", "-m", "genrm.score", "input=results.jsonl", "format=ralign", "output_dir=score"])
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((run_outside.work / "score" / "summary.json").read_text())
    assert (s["n"], s["label_correct"], s["correct"]) == (4, 3, 2)
    assert s["l_acc"] == pytest.approx(3 / 4) and s["f_score"] == pytest.approx(2 / 4)  # Correct / judged rows
    assert (run_outside.work / "score" / "mlflow.db").is_file()  # tracked, as from a checkout


def test_downstream_eval_smoke_suite_from_the_wheel(run_outside):
    """Every smoke task (shipped assets, the sandboxed code tasks, IFEval, the tiny judge) with
    short generations: the wheel's files and lookups are under test, not the scores."""
    r = run_outside(["python", "-m", "downstream_eval.run", "suite=smoke", "output_dir=ds",
                     "generator.sampling.max_tokens=8", "judge.sampling.max_tokens=4", "bootstrap.samples=50"])
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((run_outside.work / "ds" / "summary.json").read_text())
    assert set(summary["tasks"]) == {"smoke_math", "smoke_gpqa", "smoke_humaneval", "smoke_stdio", "smoke_ifeval",
                                     "smoke_general", "smoke_rubric"}
    assert (run_outside.work / "ds" / "models" / "tiny-qwen3" / "config.json").is_file()  # built where asked


def test_ralign_run_smoke_chain_from_the_wheel(run_outside):
    """A pipeline: its steps are subprocesses of the fresh interpreter, the preflight step
    starts a `transformers serve` and the downstream step evaluates the model it built (with
    short generations: as it comes, the step takes ~8 min on 2 cores)."""
    r = run_outside(["ralign", "run", "experiment=smoke_chain", "output_dir=chain",
                     "steps.downstream.overrides=['suite=smoke','model.path=@dir:preflight/models/tiny-qwen3',"
                     "'generator.sampling.max_tokens=8','judge.sampling.max_tokens=4','bootstrap.samples=50']"])
    assert r.returncode == 0, r.stderr[-3000:]
    steps: Dict[str, dict] = json.loads((run_outside.work / "chain" / "pipeline.json").read_text())
    assert {n: s["status"] for n, s in steps.items()} == {"preflight": "ok", "downstream": "ok"}
    summary = json.loads((run_outside.work / "chain" / "preflight" / "summary.json").read_text())
    assert summary["succeeded"] == summary["requests"] == 32
