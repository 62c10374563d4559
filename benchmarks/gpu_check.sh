#!/usr/bin/env bash
# The GPU check of issue 16 as ONE device command (what it checks: benchmarks/gpu_check.py).
#
# Once, on the development machine (fetches the small wheels the bare GPU machine lacks into .whl/,
# which git ignores):
#     bash benchmarks/gpu_check.sh fetch
# Then the device call (H100/H200, Python 3.12 + torch CUDA, no registry; ~7 min in all with the start-up):
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=420)
# Results come back from $OUT: gpu_check.json, gpu_check.md, gpu_check.log, nvidia-smi.txt.
# The same script dry-runs on a CPU: DEVICE=cpu CONFIG=tiny OUT=/tmp/gpu_check bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHEELS=(smplx==0.1.28)  # everything else the check imports is on the GPU machines' image

if [ "${1:-}" = "fetch" ]; then
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}"
  exit 0
fi

out="${OUT:-benchmarks/results/gpu_check}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ nvidia-smi || echo "no nvidia-smi"; python3 -c "import sys, torch; print(sys.version); print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"; } >"$out/nvidia-smi.txt" 2>&1 || true
set -o pipefail
python3 benchmarks/gpu_check.py --device "${DEVICE:-cuda}" --config "${CONFIG:-fov_kid}" --out "$out" \
  --budget-s "${BUDGET_S:-300}" "$@" 2>&1 | tee "$out/gpu_check.log"
