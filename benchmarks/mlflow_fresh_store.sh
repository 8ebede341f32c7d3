#!/usr/bin/env bash
# A stage's start-up cost in a fresh run folder: genrm.score on 20 records, tracked, each run
# in a new output_dir (so a new sqlite MLflow store), with the pre-migrated store (A) and
# without it (B: XDG_CACHE_HOME unwritable, so MLflow creates and migrates the store itself,
# as before), side by side; then the same untracked, for the part that is MLflow at all.
#   benchmarks/mlflow_fresh_store.sh [PYTHON]
set -euo pipefail
PY=${1:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
DATA=$(mktemp --suffix=.jsonl)
"$PY" -c "
import json, sys
with open(sys.argv[1], 'w') as f:
    for i in range(20):
        f.write(json.dumps({'id': i, 'gt_label': 'AB'[i % 2], 'model_pred': 'A',
                            'metarm_verdict': 'Correct' if i % 2 else 'SkippedLabelMismatch'}) + '\n')
" "$DATA"
RUN="$PY -m genrm.score input=$DATA format=ralign"
farm-bench -n 5 --timeout 300 --vs "sh -c 'd=\$(mktemp -d); XDG_CACHE_HOME=/proc/none exec $RUN output_dir=\$d'" \
  -- sh -c "d=\$(mktemp -d); exec $RUN output_dir=\$d"
farm-bench -n 5 --timeout 200 -- sh -c "d=\$(mktemp -d); exec $RUN output_dir=\$d tracking.enabled=false"
