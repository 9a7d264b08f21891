#!/bin/bash
# Scalar reference kernels vs SIMD kernels in one binary (STRATA_FORCE_SCALAR=1 selects the
# reference), on the llama fixtures and on a synthetic d=2048 model; prints strata bench tables.
#   bench/simd_bench.sh [build-dir] [threads-list] [work-dir]
# Needs the shared fixtures (../shared beside the checkout or $STRATA_SHARED). The scalar
# reference needs about a second per synthetic token, hence the short synthetic runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
THREADS=${2:-1,2}
WORK=${3:-${TMPDIR:-/tmp}/strata-simd-bench}
FIXTURES=${STRATA_SHARED:-$ROOT/../shared}/fixtures/gguf
STRATA=$BUILD/strata
mkdir -p "$WORK"

if [ ! -f "$WORK/d2048-q4_0.gguf" ]; then
    "$BUILD/bench/make_synth_llama" "$FIXTURES/llama-f32.gguf" "$WORK/d2048-f32.gguf" 2
    for t in Q4_0 Q4_K_M Q8_0 F16; do
        "$STRATA" quantize "$WORK/d2048-f32.gguf" "$WORK/d2048-$(echo $t | tr A-Z a-z).gguf" $t >&2
    done
fi

run() {  # model, prompt, gen, reps
    for mode in scalar simd; do
        echo "### $mode $(basename "$1")"
        if [ $mode = scalar ]; then export STRATA_FORCE_SCALAR=1; else export STRATA_FORCE_SCALAR=0; fi
        "$STRATA" bench -m "$1" --threads-list "$THREADS" -p "$2" -n "$3" -r "$4" 2>/dev/null | tail -n +3
    done
}
for m in llama-q4_0 llama-f32 llama-q4_k_m llama-q8_0 llama-f16; do run "$FIXTURES/$m.gguf" 128 32 3; done
for m in d2048-q4_0 d2048-q4_k_m d2048-q8_0 d2048-f16 d2048-f32; do run "$WORK/$m.gguf" 32 8 2; done
