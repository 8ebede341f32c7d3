#!/usr/bin/env bash
# Create .venv/ and install the suite in it (editable) with the extras given, e.g.
#   ./scripts/setup.sh local          # the embedded default: TRL, transformers serve
#   ./scripts/setup.sh local,eval,dev,contract   # + what the tests need (eval: graders; contract: OpenRLHF's parser)
# torch is installed first and pinned, so no package pulls a multi-GB CUDA build on a CPU
# machine. Where the pinned CPU wheel is not on the default index, point TORCH_INDEX_URL at
# one, e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "${pip[@]}" "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
else
  "${pip[@]}" "torch==2.13.0"
fi
"${pip[@]}" "torch==2.13.0" -e ".[${extras}]"
case ",${extras}," in
  *,contract,*) "${pip[@]}" --no-deps "openrlhf==0.11.2" ;;  # its GPU dependencies cannot install here
esac
echo "installed ralign-suite[${extras}] in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
echo "to use python, ralign and mlflow from it, activate it in your shell: source .venv/bin/activate"
