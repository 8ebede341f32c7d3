"""`ralign run experiment=ralign_paper_{8b,14b} dry_run=true` writes a complete, readable set
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


@pytest.mark.parametrize("preset", ["ralign_paper_8b", "ralign_paper_14b"])
def test_paper_pipeline_dry_run(preset, tmp_path):
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
    assert "--dependency" not in scripts["genrm_rlvr"]
    assert "#SBATCH --dependency=afterok:<job id of genrm_ralign>" in scripts["genrm_eval_ralign"]
    assert "#SBATCH --dependency=afterok:<job id of policy_ralign>" in scripts["downstream_ralign"]
    assert "afterok:<job id of genrm_eval_base>:<job id of genrm_eval_rlvr>" in scripts["correlate"]
    assert "#SBATCH --nodes=3" in scripts["policy_ralign"] and "#SBATCH --gpus-per-node=8" in scripts["policy_ralign"]
    assert "++tracking.tags.variant=ralign" in scripts["policy_ralign"]
    # the policy trained against the R-Align GenRM serves that GenRM's checkpoint
    policy_job = (out / "policy_ralign" / "openrlhf" / "train.sbatch").read_text()
    assert f"vllm serve {out / 'genrm_ralign' / 'checkpoint'}" in policy_job
    argvs = [json.loads(p.read_text()) for p in sorted(out.glob("*/openrlhf/openrlhf_args.json"))]
    assert len(argvs) == 5  # two GenRM trainings, three policy trainings
    results = parse(argvs)
    assert all(r["ok"] for r in results), [r.get("error") for r in results]
