#!/usr/bin/env bash
# The toy world's scientific check: the smoke experiment's outcome and ralign GenRMs and their
# policies for 3 seeds (a Hydra multirun, one MLflow store), then the comparison across seeds:
# is the ralign GenRM's S-Corr lower, and its policy's toy accuracy higher? (~30 min, 2 cores)
#   scripts/toy_check.sh [OUT_DIR] [SEEDS]      default: runs/toy_check 0,1,2
# Writes OUT_DIR/seeds/seeds.md (the verdict table), seeds.json, plots; exits 1 if the
# expectations do not hold. Resumes: finished steps of an earlier run are not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-runs/toy_check}")"
seeds="${2:-0,1,2}"
bin=.venv/bin
[ -x "$bin/ralign" ] || bin="$(dirname "$(command -v ralign)")"
"$bin/ralign" run -m experiment=toy_check "seed=$seeds" "output_dir=$out"
"$bin/python" -m analysis.seeds "mlflow.uri=sqlite:///$out/mlflow.db" 'mlflow.experiment=[toy_check]' \
  'lower=[toy_test/s_corr]' 'higher=[downstream/toy_math]' 'metrics=[toy_test/l_acc,toy_test/f_score,toy_test_checklist/ap]' \
  require=true "output_dir=$out/seeds"
