#!/usr/bin/env bash
# The smollm2-gpu measurement on the GPU machine (docs/gpu.md). Run from the repository root there:
#   bash tools/gpu/smollm2.sh part          first call: check the chunk that came, install gguf, time a step
#   bash tools/gpu/smollm2.sh run [SECONDS] later calls: join the GGUF, measure (resumable) for at most
#                                           SECONDS (default 500), pack the results into $OUT
# Everything it makes stays in git-ignored folders (build/, cache/) that a warm machine keeps between
# calls, so a second `run` resumes from the finished units.
set -uo pipefail
cd "$(dirname "$0")/../.."
export SDSL_CACHE="$PWD/cache" PYTHONUNBUFFERED=1
OUT="${OUT:-build/gpu_out}"
CARRY=build/gpu_carry
RESULTS=build/measured/smollm2-gpu
PY="${PYTHON:-python3}"
mkdir -p "$OUT"

install_gguf() {  # the image has accelerate 1.15 but not gguf: carried as a wheel
    if ! "$PY" -c "import gguf" 2>/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$CARRY"/wheels/*.whl || { echo "smollm2.sh: gguf wheel not installed"; exit 1; }
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    "$PY" -c "import gguf, accelerate, transformers, torch; print('gguf', gguf.__version__ if hasattr(gguf, '__version__') else '?', 'accelerate', accelerate.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
}

case "${1:-}" in
part)
    "$PY" -m tools.gpu.carry verify --dir "$CARRY" || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    install_gguf
    "$PY" -m tools.gpu.step_cost --device cuda 2>&1 | tee "$OUT/step_cost.txt"
    ;;
run)
    limit="${2:-500}"
    install_gguf
    "$PY" -m tools.gpu.carry join --dir "$CARRY" || exit 1
    timeout -s INT "$limit" "$PY" -m sdsl_lib.measurement --profile smollm2-gpu --device cuda --out "$RESULTS" \
        >"$OUT/measure.log" 2>&1
    rc=$?
    tail -c 4000 "$OUT/measure.log"
    if [ "$rc" = 124 ]; then
        echo "smollm2.sh: stopped after ${limit}s; finished stages are in $RESULTS, finished units in cache/runs:"
        echo "smollm2.sh: on the warm machine, \`bash tools/gpu/smollm2.sh run\` again resumes"
    else
        echo "smollm2.sh: measurement exit status $rc"
    fi
    # $OUT takes at most 8 files: pack the tables, and the units without weights or tokenizers.
    [ -d "$RESULTS" ] && tar czf "$OUT/smollm2-gpu.tgz" -C build/measured smollm2-gpu
    [ -d cache/runs/smollm2-gpu ] && tar czf "$OUT/smollm2-gpu-units.tgz" -C cache/runs \
        --exclude='*.safetensors' --exclude='*.npz' --exclude='*.bin' --exclude='tokenizer*.json' smollm2-gpu
    ls -l "$OUT"
    exit "$rc"
    ;;
*)
    echo "usage: bash tools/gpu/smollm2.sh part | run [SECONDS]" >&2
    exit 2
    ;;
esac
