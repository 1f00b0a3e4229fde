#!/usr/bin/env bash
# The runtime on an emulated aarch64 (after bench/arm/setup.sh): the parity tests and
# `edgesleep bench --quick`, with QEMU_CPU=cortex-a72 (Raspberry Pi 4: NEON, no dotprod)
# and cortex-a76 (Pi 5: NEON + dotprod) side by side, against this x86 host's outputs.
#
#   bash bench/arm/run.sh [ROOT [MODEL_DIR...]]
#
# ROOT: the folder setup.sh wrote (default runs/arm). MODEL_DIRs: exported model folders
# for the parity tests (default: those of `python studies/export_table.py --keep
# runs/export-study`, the beat-interval student of docs/benchmarks/index.md and the shipped heart
# models, step.onnx alone); the bench runs on
# the first BENCH_MODELS of them (default 2), one thread. Budget: BUDGET_S seconds per CPU
# (default 1800; ~18 min each here, side by side). Writes ROOT/results/CPU/ and
# bench/results/arm_emulated.{json,md}; exits non-zero when a parity test fails, errors or is
# skipped, or the budget runs out. Emulated timings say nothing about ARM speed.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
ROOT=$(realpath -m "${1:-runs/arm}")
shift || true
if [ $# -gt 0 ]; then MODELS=("$@"); else
    MODELS=(runs/export-study/seqsleepnet-portable runs/export-study/student-portable
            runs/export-study/student-arm64 runs/export-study/student-beats-portable
            edgesleep/data/models/heart-4class edgesleep/data/models/heart-3class)
fi
mapfile -t MODELS < <(realpath "${MODELS[@]}")
BENCH=("${MODELS[@]:0:${BENCH_MODELS:-2}}")
BUDGET_S=${BUDGET_S:-1800}
CPUS=${CPUS:-cortex-a72 cortex-a76}
[ -x "$ROOT/python" ] || { echo "no $ROOT/python: run bench/arm/setup.sh $ROOT first" >&2; exit 2; }

# the runtime under test is this checkout, installed (the emulated runs start outside the
# source tree, whose edgesleep/ lacks the edgesleep.bench mapping)
rm -rf build "$ROOT"/wheels/edgesleep-*.whl
pip wheel -q --no-deps --wheel-dir "$ROOT/wheels" . && rm -rf build
pip install -q --upgrade --force-reinstall --no-deps --target "$ROOT/site" \
    "$ROOT"/wheels/edgesleep-*.whl
# the host's outputs
rm -rf "$ROOT/bundle"
python -m edgesleep.bench.parity write "$ROOT/bundle" "${MODELS[@]}"
mapfile -t TESTS < <(realpath $(grep -l "mark.parity" tests/test_*.py))

run_cpu() {  # parity tests, parity numbers, bench --quick on one emulated CPU
    local cpu=$1 out="$ROOT/results/$1" start left
    rm -rf "$out" && mkdir -p "$out" && cd "$out"
    export QEMU_CPU=$cpu EDGESLEEP_PARITY_BUNDLE="$ROOT/bundle"
    start=$(date +%s)
    timeout "$BUDGET_S" "$ROOT/python" -m pytest -q -p no:cacheprovider --rootdir "$REPO" \
        --junitxml pytest.xml -m parity "${TESTS[@]}" > pytest.log 2>&1 || true
    left=$((BUDGET_S - $(date +%s) + start))
    timeout "$left" "$ROOT/python" -m edgesleep.bench.parity check "$ROOT/bundle" > parity.json
    left=$((BUDGET_S - $(date +%s) + start))
    timeout "$left" "$ROOT/python" -m edgesleep.cli bench --quick --threads 1 --out . \
        "${BENCH[@]}" > bench.log 2>&1
    echo "$(($(date +%s) - start))" > seconds
}

pids=()
for cpu in $CPUS; do
    echo "== $cpu: ${#TESTS[@]} test files, parity of ${#MODELS[@]} models, bench of ${#BENCH[@]}"
    run_cpu "$cpu" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for cpu in $CPUS; do tail -3 "$ROOT/results/$cpu/pytest.log"; done
python -m edgesleep.bench.emulated "$ROOT/results" \
    --qemu "$("$ROOT/qemu/usr/bin/qemu-aarch64" --version | head -1)" --out bench/results
exit $status
