#!/bin/bash
# Speculative decoding vs the target alone, in one command: greedy and sampled, on the default
# model with its draft and (when ../shared is present) on the llama / llama-draft fixture pair.
# Prints strata's own summary lines (acceptance, tokens per target pass, generation tokens/s).
#   bench/speculative_bench.sh [build-dir] [n-tokens]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STRATA=${1:-$ROOT/build}/strata
N=${2:-256}
FIXTURES=${STRATA_SHARED:-$ROOT/../shared}/fixtures/gguf
pairs=("$ROOT/models/shakespeare-q8_0.gguf $ROOT/models/shakespeare-draft-q8_0.gguf")
[ -d "$FIXTURES" ] && pairs+=("$FIXTURES/llama-f32.gguf $FIXTURES/llama-draft-f32.gguf")
for pair in "${pairs[@]}"; do
    read -r target draft <<<"$pair"
    for sampling in "--temp 0" "--temp 0.8 --seed 1"; do
        echo "== $(basename "$target") $sampling"
        echo -n "target alone:  "; "$STRATA" run -m "$target" -p "ROMEO:" -n "$N" $sampling -t 1 2>&1 >/dev/null | grep "generation"
        for d in 2 4; do
            echo "draft $d:"
            "$STRATA" run -m "$target" -md "$draft" --draft "$d" -p "ROMEO:" -n "$N" $sampling -t 1 2>&1 >/dev/null |
                grep -E "accepted|generation" | sed 's/^/   /'
        done
    done
done
