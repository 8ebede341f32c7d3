#!/usr/bin/env bash
# The toy world's scientific check (issue 23): the smoke experiment's outcome and ralign GenRMs
# and their policies for N seeds, then the comparison across seeds with statistics: is the
# ralign GenRM's S-Corr lower, and its policy's toy accuracy higher, each by a paired t-test at
# p < 0.05 (and a sign test)? Exits 1 unless both claims hold.
#   scripts/toy_check.sh [OUT_DIR] [SEEDS]    default: runs/toy_check, the 8 check seeds 100-107
#   JOBS=1 scripts/toy_check.sh ...           one seed at a time (default: 2 at once)
# The presets were tuned on seeds 0-5 and 10-29 (benchmarks/RESULTS.md, "Toy world"): the
# default seeds were never used to tune them. Each seed builds its own tiny models, warm starts
# and RL runs; seeds share nothing but the tokenizer (built from fixed text) and the data.
# Seeds run in JOBS lanes at once (each a Hydra multirun over its share of the seeds, one torch
# thread each), all in one MLflow store; ~35 min for 8 seeds on 2 cores. Writes
# OUT_DIR/seeds/seeds.md (the verdict table), seeds.json, plots, and OUT_DIR/lane<k>.log.
# Resumes: finished steps of an earlier run (same seeds, same JOBS) are not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-runs/toy_check}")"
seeds="${2:-100,101,102,103,104,105,106,107}"
jobs="${JOBS:-2}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "[toy_check] JOBS=$jobs: give a whole number >= 1" >&2; exit 2; }
[[ "$seeds" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "[toy_check] seeds '$seeds': give them as 100,101,..." >&2; exit 2; }
bin=.venv/bin
[ -x "$bin/ralign" ] || bin="$(dirname "$(command -v ralign)")"
store="sqlite:///$out/mlflow.db"
mkdir -p "$out"
# the store exists (schema made) before the lanes open it at once
"$bin/python" -c "import sys; from plumbing.tracking import seed_sqlite_store; seed_sqlite_store(sys.argv[1])" "$store"
IFS=, read -r -a all <<< "$seeds"
tuned=" 0 1 2 3 4 5 10 11 12 13 "  # the seeds the presets were tuned on (benchmarks/RESULTS.md, "Toy world")
for s in "${all[@]}"; do
  [[ "$tuned" == *" $s "* ]] && echo "[toy_check] warning: seed $s was used to tune the presets; a check on it is not independent" >&2
done
pids=()
for ((lane = 0; lane < jobs && lane < ${#all[@]}; lane++)); do
  mine=()
  for ((k = lane; k < ${#all[@]}; k += jobs)); do mine+=("${all[k]}"); done
  share="$(IFS=,; echo "${mine[*]}")"
  threads=$(( jobs > 1 ? 1 : 0 ))
  echo "[toy_check] lane $lane: seeds $share (log: $out/lane$lane.log)"
  ( [ "$threads" = 1 ] && export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    exec "$bin/ralign" run -m experiment=toy_check "seed=$share" "output_dir=$out/lane$lane" "tracking.uri=$store" \
      "hydra.sweep.dir=$out/lane$lane" ) > "$out/lane$lane.log" 2>&1 &
  pids+=($!)
done
failed=0
for k in "${!pids[@]}"; do
  if ! wait "${pids[k]}"; then echo "[toy_check] lane $k failed: see $out/lane$k.log" >&2; failed=1; fi
done
[ "$failed" = 0 ] || exit 1
"$bin/python" -m analysis.seeds "mlflow.uri=$store" 'mlflow.experiment=[toy_check]' \
  'lower=[toy_test/s_corr]' 'higher=[downstream/toy_math]' 'metrics=[toy_test/l_acc,toy_test/f_score,toy_test_checklist/ap]' \
  require=true "output_dir=$out/seeds"
