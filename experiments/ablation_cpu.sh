#!/usr/bin/env bash
# The hard-negative ablation of MMGeoLM's Table 3 on 2 CPU cores in under 30 minutes:
# geoforge-tiny trained from scratch five times on ONE corpus with ONE step budget,
#   (a) in-batch only, (b) + retrieval caption negatives, (c) + rule caption negatives,
#   (d) + image negatives, (e) all of them,
# then evaluated, with the untrained model, on a held-out corpus made with another seed.
#
# Usage (from the repository root):  experiments/ablation_cpu.sh [OUT]   (default out/ablation)
# Writes OUT/train, OUT/heldout (corpora), OUT/runs/{a..e} (checkpoints, logs, summary.json),
# OUT/eval.json (+ eval-1.json, eval-2.json), OUT/blind.json (experiments/blind_check.py),
# OUT/timings.tsv, OUT/settings.tsv, OUT/results.md.
# Every setting below can be overridden from the environment (e.g. STEPS=50 for a dry run).
set -euo pipefail

OUT=${1:-out/ablation}
GEOFORGE=${GEOFORGE:-.venv/bin/geoforge}
PYTHON=${PYTHON:-.venv/bin/python}

RECIPE=${RECIPE:-experiments/ablation.toml} # mmgeo-4k's families, rendered at 160 px
N_TRAIN=${N_TRAIN:-1000}                     # training positives (one shard)
N_EVAL=${N_EVAL:-300}                        # held-out positives
TRAIN_SEED=${TRAIN_SEED:-2025}               # corpus seed of the training corpus
EVAL_SEED=${EVAL_SEED:-7}                    # corpus seed of the held-out corpus
K=${K:-2}                                    # caption negatives per source: (b), (c) use K, (e) 2K
L=${L:-2}                                    # image negatives: (d), (e)
EVAL_NEG=${EVAL_NEG:-4}                      # negatives of each source in the held-out corpus
STEPS=${STEPS:-250}
BATCH=${BATCH:-16}
LR=${LR:-3e-4}
WARMUP=${WARMUP:-100}
SEED=${SEED:-0}                              # training seed (init, order, augmentation)
MODEL=${MODEL:-geoforge-tiny}

if [[ ! -x $GEOFORGE ]]; then
    echo "error: $GEOFORGE not found; run from the repository root after make" >&2
    exit 2
fi
if [[ -e $OUT && -n $(ls -A "$OUT" 2>/dev/null) ]]; then
    echo "error: $OUT exists and is not empty; remove it or pass another directory" >&2
    exit 2
fi
mkdir -p "$OUT/runs"
NPROC=$(nproc) # before OMP_NUM_THREADS is set: nproc honours it

# One thread per process: on 2 contended cores, torch's 2-thread OpenMP pool spins and is
# slower than one thread. The two cores are used by running two processes side by side.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# The example third-party plugin (misplaced_point) may be installed: use only the built-ins.
NOPLUGIN=(--no-plugin misplaced_point)

lanes=()
cleanup() {
    for pid in "${lanes[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

T_START=$(date +%s)
: >"$OUT/timings.tsv"
phase() { # phase NAME COMMAND...: run and record wall seconds
    local name=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    printf '%s\t%.0f\n' "$name" "$(echo "$t1 - $t0" | bc)" >>"$OUT/timings.tsv"
    echo "== $name: $(echo "$t1 - $t0" | bc | cut -d. -f1) s" >&2
}

{
    printf 'machine\t%s cores, %s\n' "$NPROC" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    printf 'model\t%s (from scratch)\n' "$MODEL"
    printf 'recipe\t%s\n' "$RECIPE"
    printf 'training corpus\t%s positives, seed %s, %s rule + %s retrieval caption negatives and %s image negatives each\n' \
        "$N_TRAIN" "$TRAIN_SEED" "$K" "$K" "$L"
    printf 'held-out corpus\t%s positives, seed %s, up to %s negatives of each source\n' "$N_EVAL" "$EVAL_SEED" "$EVAL_NEG"
    printf 'steps × batch\t%s × %s (seed %s), lr %s, warmup %s, cosine, AdamW wd 0.1, fp32\n' \
        "$STEPS" "$BATCH" "$SEED" "$LR" "$WARMUP"
    printf 'K (per caption source), L\t%s, %s\n' "$K" "$L"
    printf 'threads\t2 processes side by side, OMP_NUM_THREADS=1\n'
} >"$OUT/settings.tsv"

gen() { # gen OUT_DIR N SEED NEG_IMAGE NEG_CAPTION NEG_RETRIEVAL
    "$GEOFORGE" generate "$RECIPE" --out "$1" --n "$2" --seed "$3" --workers 2 \
        --image-negatives "$4" --caption-negatives "$5" --retrieval-negatives "$6" \
        "${NOPLUGIN[@]}" --json >"$1.manifest.json"
}
phase "generate training corpus" gen "$OUT/train" "$N_TRAIN" "$TRAIN_SEED" "$L" "$K" "$K"
phase "generate held-out corpus" gen "$OUT/heldout" "$N_EVAL" "$EVAL_SEED" "$EVAL_NEG" "$EVAL_NEG" "$EVAL_NEG"

declare -A FLAGS=(
    [a]=""
    [b]="--text-negatives retrieval --k-text $K"
    [c]="--text-negatives caption --k-text $K"
    [d]="--k-image $L"
    [e]="--text-negatives caption --text-negatives retrieval --k-text $((2 * K)) --k-image $L"
)
train_one() { # train_one ROW
    local run="$OUT/runs/$1" t0 t1
    mkdir -p "$run"
    echo "${FLAGS[$1]}" >"$run/flags.txt"
    t0=$(date +%s)
    # shellcheck disable=SC2086  # FLAGS holds several options
    "$GEOFORGE" train mmclip --data "$OUT/train" --out "$run" --model "$MODEL" \
        --max-steps "$STEPS" --epochs 1000 --batch-size "$BATCH" --lr "$LR" --warmup "$WARMUP" \
        --seed "$SEED" ${FLAGS[$1]} --json >"$run/summary.json" 2>"$run/stderr.log"
    t1=$(date +%s)
    echo "$((t1 - t0))" >"$run/wall_seconds.txt"
    echo "   trained ($1) in $((t1 - t0)) s: $(cat "$run/summary.json")" >&2
}
lane() { for row in "$@"; do train_one "$row"; done; }
train_all() {
    # Two lanes, longest runs first, balanced by the measured cost of a step
    # ((e) ≈ (b)+(c)+(a)+... see experiments/README.md).
    lane e b &
    lanes+=($!)
    lane d c a &
    lanes+=($!)
    local status=0
    for pid in "${lanes[@]}"; do wait "$pid" || status=$?; done
    lanes=()
    return "$status"
}
phase "train (a)-(e), 2 lanes" train_all

evaluate() {
    "$GEOFORGE" eval mmclip --data "$OUT/heldout" --json \
        --checkpoint "untrained:$MODEL" --checkpoint "$OUT/runs/a" --checkpoint "$OUT/runs/b" \
        >"$OUT/eval-1.json" &
    lanes+=($!)
    "$GEOFORGE" eval mmclip --data "$OUT/heldout" --json \
        --checkpoint "$OUT/runs/c" --checkpoint "$OUT/runs/d" --checkpoint "$OUT/runs/e" \
        >"$OUT/eval-2.json" &
    lanes+=($!)
    local status=0
    for pid in "${lanes[@]}"; do wait "$pid" || status=$?; done
    lanes=()
    [[ $status -eq 0 ]] || return "$status"
    "$PYTHON" -c 'import json, sys; json.dump(json.load(open(sys.argv[1])) + json.load(open(sys.argv[2])), open(sys.argv[3], "w"), indent=1)' \
        "$OUT/eval-1.json" "$OUT/eval-2.json" "$OUT/eval.json"
}
phase "evaluate 6 models, 2 lanes" evaluate

blind() { # the same image→caption accuracy with another sample's image (a text-only prior?)
    "$PYTHON" experiments/blind_check.py --data "$OUT/heldout" \
        --checkpoint "untrained:$MODEL" --checkpoint "$OUT/runs/a" --checkpoint "$OUT/runs/b" \
        >"$OUT/blind-1.json" &
    lanes+=($!)
    "$PYTHON" experiments/blind_check.py --data "$OUT/heldout" \
        --checkpoint "$OUT/runs/c" --checkpoint "$OUT/runs/d" --checkpoint "$OUT/runs/e" \
        >"$OUT/blind-2.json" &
    lanes+=($!)
    local status=0
    for pid in "${lanes[@]}"; do wait "$pid" || status=$?; done
    lanes=()
    [[ $status -eq 0 ]] || return "$status"
    "$PYTHON" -c 'import json, sys; json.dump(json.load(open(sys.argv[1])) + json.load(open(sys.argv[2])), open(sys.argv[3], "w"), indent=1)' \
        "$OUT/blind-1.json" "$OUT/blind-2.json" "$OUT/blind.json"
}
phase "blind check (another sample's image), 2 lanes" blind

printf 'total\t%s\n' "$(($(date +%s) - T_START))" >>"$OUT/timings.tsv"
"$PYTHON" experiments/ablation_table.py "$OUT"
