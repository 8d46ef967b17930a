#!/usr/bin/env bash
# The checks that need a machine this one is not: a GPU, and a CPU with AMX. For a lent device machine
# (DEVELOPERS.md: one NVIDIA GPU, a 16-core AMX CPU, torch but no gradio, no network), one part per call,
# each well under its 10-minute limit:
#
#   bash benchmarks/device_check.sh gpu         # the GPU section of the benchmarks: every model (~3 min)
#   bash benchmarks/device_check.sh amx-tests   # the GPU hidden, 2 cores: the tests that need no gradio (~4 min)
#   bash benchmarks/device_check.sh amx-bench   # the GPU hidden, 2 cores: throughput vs fp32 eager (~4 min)
#
# Results go under $OUT (the device tool brings that folder back), else /tmp/device-check: machine.txt,
# and per part a Markdown table (gpu.md, amx.md) or the pytest log, with the full output in *.log. Parts
# that find no GPU (a CPU-only machine, where this script is tried first) say so and write an empty table.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 FORGER_CACHE="$OUT/forger-cache"
# A 2-core AMX machine, as the issue's: the first two CPUs, two torch threads.
CORES=${CORES:-0,1}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  echo "ISA flags: $(grep -o -w 'amx_tile\|amx_bf16\|amx_int8\|avx512_bf16\|avx512_fp16\|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "CPUs: $(nproc), used for the AMX parts: $CORES"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

part=${1:-}
case "$part" in
  gpu)
    timeout 540 "$PY" -m benchmarks --only gpu --out "$OUT/gpu.md" > "$OUT/gpu.log" 2>&1
    rc=$?
    sed "/How to read this/,\$d" "$OUT/gpu.md" 2>/dev/null | tail -n 40 || tail -n 40 "$OUT/gpu.log"
    ;;
  amx-tests)
    CUDA_VISIBLE_DEVICES= timeout 540 taskset -c "$CORES" "$PY" -m pytest -q -p no:cacheprovider \
      tests/test_serving.py tests/test_train.py tests/test_training_data.py tests/test_api.py \
      tests/test_projection.py tests/test_judge.py tests/test_checkpoints.py tests/test_data.py \
      tests/test_evaluate.py tests/test_registry.py > "$OUT/amx-tests.log" 2>&1
    rc=$?
    tail -n 30 "$OUT/amx-tests.log"
    ;;
  amx-bench)
    CUDA_VISIBLE_DEVICES= timeout 540 taskset -c "$CORES" "$PY" -m benchmarks --only throughput --threads 2 \
      --out "$OUT/amx.md" > "$OUT/amx-bench.log" 2>&1
    rc=$?
    sed "/How to read this/,\$d" "$OUT/amx.md" 2>/dev/null | tail -n 40 || tail -n 40 "$OUT/amx-bench.log"
    ;;
  *)
    echo "usage: bash benchmarks/device_check.sh gpu|amx-tests|amx-bench" >&2
    exit 2
    ;;
esac
echo "part $part: exit $rc"
exit "$rc"
