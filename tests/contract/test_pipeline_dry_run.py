"""`ralign run experiment=ralign_paper[_8b|_14b] dry_run=true` writes a complete, readable set
of sbatch scripts, and every OpenRLHF command line in them passes OpenRLHF's own parser."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import genrm_fixtures as fx
from cluster_presets import parse
from plumbing.config.hydra_app import compose, execute, finalize

pytestmark = pytest.mark.contract


@pytest.mark.parametrize("preset,size,trainings", [("ralign_paper_8b", "8b", 5), ("ralign_paper_14b", "14b", 5),
                                                   ("ralign_paper", "8b", 4 + 7)])
def test_paper_pipeline_dry_run(preset, size, trainings, tmp_path):
    data = fx.write(tmp_path / "rl.jsonl", fx.ralign_records())  # the hub's R-Align RL data, in its format
    out = tmp_path / "out"
    obj, cfg = finalize(*compose("pipeline", [
        f"experiment={preset}", "dry_run=true", f"output_dir={out}",
        f"+stage_overrides.genrm_train=['data.ralign_rl.path={data}']",
        "+stage_overrides.policy_train=['data=smoke_prompts']"]))
    summary = execute("pipeline", obj, cfg)
    steps = summary["steps"]
    assert {s["stage"] for s in steps.values()} == {"genrm_train", "genrm_eval", "policy_train", "downstream_eval",
                                                    "correlate", "compare"}
    scripts = {name: Path(s["script"]).read_text() for name, s in steps.items()}
    for name, text in scripts.items():
        assert subprocess.run(["bash", "-n", steps[name]["script"]]).returncode == 0, name
        assert "#SBATCH --partition" not in text  # none given: the site's default
    # dependencies follow the results each step uses
    assert "--dependency" not in scripts[f"genrm_rlvr_{size}"]
    assert f"#SBATCH --dependency=afterok:<job id of genrm_ralign_{size}>" in scripts[f"genrm_eval_ralign_{size}"]
    assert f"#SBATCH --dependency=afterok:<job id of policy_ralign_{size}>" in scripts[f"downstream_ralign_{size}"]
    assert f"afterok:<job id of genrm_eval_qwen3_{size}>:<job id of genrm_eval_rlvr_{size}>" in scripts["correlate"]
    ralign = scripts[f"policy_ralign_{size}"]
    assert "#SBATCH --nodes=3" in ralign and "#SBATCH --gpus-per-node=8" in ralign
    assert f"++tracking.tags.variant=ralign_{size}" in ralign and "++tracking.tags.family_reward=ralign" in ralign
    # the policy trained against the R-Align GenRM serves that GenRM's checkpoint
    policy_job = (out / f"policy_ralign_{size}" / "openrlhf" / "train.sbatch").read_text()
    assert f"vllm serve {out / f'genrm_ralign_{size}' / 'checkpoint'}" in policy_job
    # the GenRM (TP 2) fills its own 8-GPU node with data-parallel replicas behind one endpoint
    assert "--tensor-parallel-size 2" in policy_job and "--data-parallel-size 4" in policy_job
    metarm_job = (out / f"genrm_ralign_{size}" / "openrlhf" / "train.sbatch").read_text()  # Qwen3-32B at TP 8
    assert "--tensor-parallel-size 8" in metarm_job and "--data-parallel-size" not in metarm_job
    argvs = [json.loads(p.read_text()) for p in sorted(out.glob("*/openrlhf/openrlhf_args.json"))]
    assert len(argvs) == trainings  # a GenRM training per trained variant, a policy training per variant
    results = parse(argvs)
    assert all(r["ok"] for r in results), [r.get("error") for r in results]


def test_dry_run_shows_what_the_step_jobs_run(tmp_path, monkeypatch, tiny_model):
    """Each training step's job script, command line and reward module from the pipeline's dry
    run are what that step's job renders and runs on the cluster: the pipeline is run for
    real (steps' MLflow runs created, step scripts written), sbatch stands in for the queue,
    and every OpenRLHF step is then run from its job script's own command line, inside a
    stand-in allocation of its size, with only the GPU job itself (``bash train.sbatch``)
    stood in for: it "succeeds", so later steps resolve ``runs:/`` to its checkpoint tag."""
    import shlex

    import plumbing.launch.slurm as slurm_mod
    from plumbing.config.hydra_app import STAGES, stage_module

    data = fx.write(tmp_path / "rl.jsonl", fx.ralign_records())
    out, uri = tmp_path / "out", f"sqlite:///{tmp_path / 'mlflow.db'}"
    # the models' tokenizers must be here for the prompt-length check (a tiny one stands in for Qwen3-8B's)
    common = ["experiment=ralign_paper_8b", f"output_dir={out}", f"tracking.uri={uri}", "tracking.enabled=true",
              f"+stage_overrides.genrm_train=['data.ralign_rl.path={data}','model.path={tiny_model}']",
              f"+stage_overrides.policy_train=['data=smoke_prompts','policy.path={tiny_model}']"]

    def job_files() -> dict:
        return {str(p.relative_to(out)): p.read_text() for p in sorted(out.glob("*/openrlhf/*"))
                if p.is_file() and p.suffix in (".sbatch", ".json", ".jsonl", ".py", ".txt")}

    execute("pipeline", *finalize(*compose("pipeline", common + ["dry_run=true"])))
    shown = job_files()
    assert len([k for k in shown if k.endswith("train.sbatch")]) == 5
    for p in out.glob("*/openrlhf"):  # what the jobs render must come from the jobs
        subprocess.run(["rm", "-rf", str(p)], check=True)

    submitted = []
    monkeypatch.setattr(slurm_mod, "submit", lambda script: submitted.append(Path(script)) or str(len(submitted)))
    execute("pipeline", *finalize(*compose("pipeline", common)))
    modules = {STAGES[s].module: s for s in STAGES}

    real_popen = subprocess.Popen
    ran = []

    class GpuJob:  # the GPU job: seen, not run; it "succeeds"
        def __init__(self, argv):
            ran.append(argv[1])

        def wait(self, timeout=None):
            return 0

    def cluster_job(argv, *a, **kw):
        if list(argv[:1]) == ["bash"] and str(argv[1]).endswith("train.sbatch"):
            return GpuJob(argv)
        return real_popen(argv, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", cluster_job)
    for script in submitted:
        text = script.read_text()
        line = next((ln for ln in text.splitlines() if " -m " in ln and "plumbing.launch.finish" not in ln), None)
        if line is None:
            continue
        argv = shlex.split(line)
        if argv[-1] == "&":  # the job runs its command in the background and waits for it
            argv.pop()
        module = argv[argv.index("-m") + 1]
        stage = modules[module]
        if not getattr(stage_module(stage), "RENDERS_JOBS", False):
            continue
        nodes = next(ln.split("=")[1] for ln in text.splitlines() if ln.startswith("#SBATCH --nodes="))
        monkeypatch.setenv("SLURM_JOB_ID", "4242")
        monkeypatch.setenv("SLURM_JOB_NUM_NODES", nodes)
        overrides = argv[argv.index("-m") + 2:]
        execute(stage, *finalize(*compose(stage, overrides)), overrides)
    assert len(ran) == 5
    rendered = job_files()
    assert set(rendered) == set(shown)
    for name in shown:
        assert rendered[name] == shown[name], name


def test_a_step_job_smaller_than_its_layout_is_refused_before_anything_is_written(tmp_path):
    from plumbing.config.validate import ConfigError

    out = tmp_path / "out"
    obj, cfg = finalize(*compose("pipeline", ["experiment=ralign_paper_8b", "dry_run=true", f"output_dir={out}",
                                              "matrix.variants.ralign_8b.slurm.genrm.nodes=2",
                                              "+matrix.variants.qwen3_8b.slurm.policy.gpus_per_node=4",
                                              "cluster.slurm.cpus_per_task=64"]))
    with pytest.raises(ConfigError) as e:
        execute("pipeline", obj, cfg)
    keys = [k for k, _ in e.value.problems]
    # all at once, each at the key that changes it: the template's, and the variant's own named
    assert ("matrix.steps.genrm.slurm.nodes (step genrm_ralign_8b; this variant only: "
            "matrix.variants.ralign_8b.slurm.genrm.nodes)") in keys
    assert any(k.startswith("matrix.steps.policy.slurm.gpus_per_node (step policy_qwen3_8b;") for k in keys)
    assert len([k for k in keys if ".slurm.cpus_per_task (step " in k]) == 5  # the presets' Ray nodes take 96 CPUs
    assert not (out / "slurm").exists()


def test_a_job_laid_out_for_the_cluster_runs_only_in_an_allocation_of_its_size():
    from plumbing.engines.openrlhf import in_allocation
    from plumbing.engines.openrlhf_plan import Plan
    from plumbing.errors import SuiteError

    obj, _ = compose("genrm_train", ["experiment=genrm_ralign_qwen3_8b", "cluster.submit=false"])
    layout = obj.plan()
    assert isinstance(layout, Plan) and layout.job_nodes == 3
    with pytest.raises(SuiteError, match="not one"):
        in_allocation(layout, {})
    with pytest.raises(SuiteError, match="--nodes=3"):
        in_allocation(layout, {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2"})
    in_allocation(layout, {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "3"})


def test_the_paper_pipeline_dry_run_works_offline_and_says_what_each_job_reads(tmp_path, capsys):
    """`ralign run experiment=ralign_paper_8b dry_run=true` with no data given and no hub
    (HF_HUB_OFFLINE=1): every training step's own dry run reads nothing, prints its resource
    plan and says where its job will read its data from."""
    execute("pipeline", *finalize(*compose("pipeline", ["experiment=ralign_paper_8b", "dry_run=true",
                                                        f"output_dir={tmp_path / 'out'}"])))
    printed = capsys.readouterr().out
    assert printed.count("OpenRLHF resource plan:") == 5  # two GenRM trainings, three policy trainings
    reads = [ln for ln in printed.splitlines() if "data, read when the job is prepared" in ln]
    assert len(reads) == 5 and all("hub lyn22333/R-Align-RL-Data" in ln for ln in reads), reads
