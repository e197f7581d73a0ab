#!/usr/bin/env bash
# Every GPU measurement of the frame loop in one go, for a short loan of a CUDA machine:
#   1. smoke: the tiny model's 3D loop on CUDA (does the device-resident loop run at all?
#      if not, the later steps measure the previous, host-picture loop alone);
#   2. sd15-512: SD 1.5-size random-weight pipelines, 24 frames of 3D with DPT-Large-size depth at
#      512², fp16: per-stage table, fps, peak GPU memory, share outside UNet + VAE;
#   3. sdxl-1024: the same with SDXL-size pipelines at 1024²;
#   4. gpu-check: gpu_check.py (the device loop against the NumPy loop, a 3D run in the
#      engine's own process, VAE precision, out of memory).
# Each step has its own time limit, so one that fails or hangs leaves the others their
# turn; each step's output goes to LOGS/<step>.log (default: $OUT, else /tmp/gpu-run).
#
#     bash benchmarks/gpu_run.sh [python [step ...]]   # python3 and every step by default
set -u
cd "$(dirname "$0")/.."
py=${1:-python3}
only=${*:2}
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

wanted() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, diffusers, transformers, cv2, numpy
print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers',
      transformers.__version__, 'opencv', cv2.__version__, 'numpy', numpy.__version__)"
loops=(--loops previous today)
if wanted smoke; then
    step smoke 80 "$py" -X faulthandler benchmarks/bench_frame.py --device cuda --frames 3 \
        --reps 1 --steps 10
    # the device loop broke: the later steps measure the previous, host-picture loop alone
    grep -q "^| today" "$logs/smoke.log" || loops=(--loops previous)
fi
wanted sd15-512 && step sd15-512 150 "$py" benchmarks/bench_frame.py --device cuda \
    --real-size sd15 --size 512 --frames 24 --steps 25 --reps 2 --models "$models" "${loops[@]}"
wanted sdxl-1024 && step sdxl-1024 190 "$py" benchmarks/bench_frame.py --device cuda \
    --real-size sdxl --size 1024 --frames 24 --steps 25 --reps 1 --models "$models" \
    "${loops[@]}"
wanted gpu-check && step gpu-check 140 "$py" benchmarks/gpu_check.py --models "$models"
