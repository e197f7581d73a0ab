#!/usr/bin/env bash
# Every GPU measurement of the frame loop in one go, for a short loan of a CUDA machine:
#   1. the tiny model's 3D loop on CUDA (does the device-resident loop run at all? if not,
#      the later steps measure the previous, host-picture loop alone);
#   2. SD 1.5-size random-weight pipelines, 24 frames of 3D with DPT-Large-size depth at
#      512², fp16: per-stage table, fps, peak GPU memory, share outside UNet + VAE;
#   3. the same with SDXL-size pipelines at 1024²;
#   4. gpu_check.py: the device loop against the NumPy loop, VAE precision, out of memory.
# Each step has its own time limit, so one that fails or hangs leaves the others their
# turn; each step's output goes to LOGS/<step>.log (default: $OUT, else /tmp/gpu-run).
#
#     bash benchmarks/gpu_run.sh [python]          # python: default python3
set -u
cd "$(dirname "$0")/.."
py=${1:-python3}
logs=${OUT:-/tmp/gpu-run}
models=${GPU_RUN_MODELS:-/tmp/gpu-run-models}  # random-weight models, written once
mkdir -p "$logs" "$models"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

step() {  # step NAME SECONDS COMMAND...: COMMAND under a limit, its output logged, $code set
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit} s)"
    local started=$SECONDS
    timeout "$limit" "$@" >"$logs/$name.log" 2>&1
    code=$?
    grep -v "^frame \|Writing model shards\|it/s\]" "$logs/$name.log" | tail -n 60
    echo "=== $name: exit $code after $((SECONDS - started)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, diffusers, transformers, cv2, numpy
print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers',
      transformers.__version__, 'opencv', cv2.__version__, 'numpy', numpy.__version__)"
step smoke 80 "$py" benchmarks/bench_frame.py --device cuda --frames 3 --reps 1 --steps 10
loops=(--loops previous today)
[ "$code" -eq 0 ] || loops=(--loops previous)  # the device loop broke: measure the host loop
step sd15-512 150 "$py" benchmarks/bench_frame.py --device cuda --real-size sd15 --size 512 \
    --frames 24 --steps 25 --reps 2 --models "$models" "${loops[@]}"
step sdxl-1024 190 "$py" benchmarks/bench_frame.py --device cuda --real-size sdxl --size 1024 \
    --frames 24 --steps 25 --reps 1 --models "$models" "${loops[@]}"
step gpu-check 140 "$py" benchmarks/gpu_check.py --models "$models"
