#!/usr/bin/env bash
# Runs the CUDA-relevant test suites on a GPU machine with a test binary built elsewhere (it
# builds nothing): the CUDA backend's own test, the op conformance suite (every op on every
# backend against the CPU reference) and the model suites with STRATA_TEST_BACKEND=cuda.
# Prints one line per suite and a summary; full logs go to $OUT (or ./gpu-logs).
#
#   tests/gpu/run.sh [path/to/strata_tests]
#
# The binary defaults to $STRATA_TESTS_BIN, else .devcarry-cuda/strata_tests, else
# build/tests/strata_tests. Exit status: 0 when every suite passed, 1 otherwise — including when
# the CUDA backend is unavailable, since on a GPU machine that is itself the failure.
set -u

bin=${1:-${STRATA_TESTS_BIN:-}}
[[ -n $bin ]] && bin=$(realpath "$bin")
logs=$(realpath -m "${OUT:-gpu-logs}")
cd "$(dirname "$0")/../.." || exit 1
if [[ -z $bin ]]; then
    for candidate in .devcarry-cuda/strata_tests build/tests/strata_tests; do
        [[ -x $candidate ]] && bin=$PWD/$candidate && break
    done
fi
if [[ -z $bin || ! -x $bin ]]; then
    echo "gpu/run.sh: no test binary (pass its path or set STRATA_TESTS_BIN)" >&2
    exit 1
fi
mkdir -p "$logs" || exit 1
# Fixtures for the reference tests, where this checkout carries them.
[[ -z ${STRATA_SHARED:-} && -d shared/fixtures ]] && export STRATA_SHARED=$PWD/shared

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$logs/gpu.txt" 2>&1
echo "gpu: $(paste -sd ';' - <"$logs/gpu.txt"); binary: $bin"

failed=0
# How test_cuda_backend.cpp and test_backend_ops.cpp say that the cuda backend cannot run here.
skip_pattern='skipping the CUDA backend test|backend_ops: cuda skipped'
# run_suite NAME ENV... -- DOCTEST_ARGS...: one doctest run, its log in $logs/NAME.log.
run_suite() {
    local name=$1 envs=() start rc summary
    shift
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    start=$SECONDS
    env "${envs[@]}" "$bin" --no-intro=true "$@" >"$logs/$name.log" 2>&1
    rc=$?
    summary=$(grep -E '^\[doctest\] (test cases|assertions):' "$logs/$name.log" | sed 's/^\[doctest\] //' |
        tr -s ' ' | paste -sd ';' -)
    if [[ $rc -ne 0 ]]; then
        failed=1
        printf '%-13s FAIL (exit %d, %ds) %s\n' "$name" "$rc" $((SECONDS - start)) "$summary"
        # Ops the backend does not have yet, by name, before the first few failures in full.
        missing=$(grep -o 'cuda backend: [a-z_0-9 ]* is not implemented yet' "$logs/$name.log" | sort -u |
            sed 's/cuda backend: \(.*\) is not implemented yet/\1/' | paste -sd ',' -)
        [[ -n $missing ]] && echo "    not implemented yet: $missing"
        grep -E 'ERROR|FATAL|error:' "$logs/$name.log" | head -n 10 | sed 's/^/    /'
    elif grep -qE "$skip_pattern" "$logs/$name.log"; then
        # On a GPU machine a skip means the backend could not start: a failure, not a pass.
        failed=1
        printf '%-13s SKIPPED: %s\n' "$name" "$(grep -m1 -oE "($skip_pattern).*" "$logs/$name.log")"
    elif grep -q 'test cases: *0 |' "$logs/$name.log"; then
        printf '%-13s ABSENT (no test cases match: not in this binary yet)\n' "$name"
    else
        printf '%-13s ok (%ds) %s\n' "$name" $((SECONDS - start)) "$summary"
    fi
    local no_fixtures
    no_fixtures=$(grep -c 'SKIPPED (no ../shared fixtures' "$logs/$name.log")
    [[ $no_fixtures -gt 0 ]] && echo "    $no_fixtures test cases skipped: no fixtures (set STRATA_SHARED)"
    return 0
}

run_suite cuda_backend -- --source-file='*test_cuda_backend.cpp'
run_suite backend_ops -- --source-file='*test_backend_ops.cpp'
# The suites that take their backend from test_backend() (tests/test_backend.h).
run_suite models_cuda STRATA_TEST_BACKEND=cuda -- \
    --source-file='*test_transformer.cpp,*test_moe.cpp,*test_beam.cpp,*test_speculative.cpp,*test_quantize.cpp'

if [[ $failed -ne 0 ]]; then
    echo "gpu/run.sh: FAILED (logs in $logs)"
    exit 1
fi
echo "gpu/run.sh: all suites passed (logs in $logs)"
