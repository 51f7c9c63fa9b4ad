#!/usr/bin/env bash
# Does the MMCLIP tower help the LMM read figures? The same tiny MMGeoLM (a random-init
# 2-layer Qwen2-style LM built in-process, nothing downloaded) is trained twice per seed on
# the same Q&A corpus, once on an in-batch-trained tower and once on an MMCLIP tower (caption
# and image negatives), for 3 seeds, and evaluated on held-out Q&A made with another corpus
# seed: perception accuracy and paired accuracy on questions an image negative flips.
#
# Usage (from the repository root):  experiments/mmgeolm_towers.sh [OUT]  (default out/towers)
# Writes OUT/train, OUT/heldout (corpora), OUT/llm, OUT/towers/{inbatch,mmclip},
# OUT/runs/TOWER-sSEED/{align,sft}, OUT/runs/TOWER-sSEED.{eval,blind}.json (the blind control,
# experiments/mmgeolm_blind.py: each question shown another figure), OUT/timings.tsv and OUT/results.md
# (experiments/mmgeolm_table.py). Every setting below can be overridden from the environment.
set -euo pipefail

OUT=${1:-out/towers}
GEOFORGE=${GEOFORGE:-.venv/bin/geoforge}
PYTHON=${PYTHON:-.venv/bin/python}
RECIPE=${RECIPE:-experiments/ablation.toml} # mmgeo-4k's families at 160 px (geoforge-tiny's input)
N_TRAIN=${N_TRAIN:-400}
N_EVAL=${N_EVAL:-120}
IMAGE_NEG=${IMAGE_NEG:-2}                    # image negatives per figure (MMCLIP and flips)
CAPTION_NEG=${CAPTION_NEG:-2}                # rule caption negatives per figure (MMCLIP)
TOWER_STEPS=${TOWER_STEPS:-200}
ALIGN_STEPS=${ALIGN_STEPS:-120}
SFT_STEPS=${SFT_STEPS:-500}
BATCH=${BATCH:-16}
SFT_LR=${SFT_LR:-1e-3}                       # a random-init LM; the paper's 2e-5 is for a pretrained 7B
SEEDS=${SEEDS:-"0 1 2"}
CORPORA=${CORPORA:-}                         # an earlier OUT: reuse its train, heldout and llm

if [[ -e $OUT && -n $(ls -A "$OUT" 2>/dev/null) ]]; then
    echo "error: $OUT exists and is not empty; remove it or pass another directory" >&2
    exit 2
fi
mkdir -p "$OUT/runs" "$OUT/towers"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 # one thread per process; two processes side by side
: >"$OUT/timings.tsv"
phase() { # phase NAME COMMAND...: run it, record its wall seconds
    local name=$1 t0
    shift
    t0=$(date +%s)
    "$@"
    printf '%s\t%s\n' "$name" $(($(date +%s) - t0)) >>"$OUT/timings.tsv"
}

gen() { # gen NAME N SEED
    "$GEOFORGE" generate "$RECIPE" --out "$OUT/$1" --n "$2" --seed "$3" --workers 1 --json \
        --image-negatives "$IMAGE_NEG" --caption-negatives "$CAPTION_NEG" --qa >"$OUT/$1.json"
}
if [[ -n $CORPORA ]]; then
    for part in train heldout llm train.json heldout.json; do cp -r "$CORPORA/$part" "$OUT/$part"; done
else
    phase corpora bash -c "$(declare -f gen); OUT=$OUT GEOFORGE=$GEOFORGE RECIPE=$RECIPE IMAGE_NEG=$IMAGE_NEG \
        CAPTION_NEG=$CAPTION_NEG; gen train $N_TRAIN 2025 & gen heldout $N_EVAL 7 & wait"
fi

tower() { # tower NAME ARGS...
    local name=$1
    shift
    "$GEOFORGE" train mmclip --data "$OUT/train" --out "$OUT/towers/$name" --model geoforge-tiny \
        --epochs 1000 --max-steps "$TOWER_STEPS" --batch-size "$BATCH" --lr 3e-4 --warmup 50 --seed 0 --json "$@" \
        >"$OUT/towers/$name.json"
}
phase towers bash -c "$(declare -f tower); OUT=$OUT GEOFORGE=$GEOFORGE TOWER_STEPS=$TOWER_STEPS BATCH=$BATCH; \
    tower inbatch & tower mmclip --text-negatives caption --k-text $CAPTION_NEG --k-image $IMAGE_NEG & wait"

[[ -n $CORPORA ]] || phase llm "$PYTHON" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from geoforge.corpus import read_corpus
from geoforge_train.mmgeolm.tiny import tiny_llm
out = Path(sys.argv[1])
texts = []
for record in read_corpus(out / "train"):
    texts.append(record.files["txt"].decode())
    texts += [i["prompt"] + " " + i["response"] for i in json.loads(record.meta["qa"])["items"]]
tiny_llm(out / "llm", texts, arch="qwen2", hidden=128, layers=2, vocab=800)
PY

lmm() { # lmm TOWER SEED: align, sft, eval
    local run="$OUT/runs/$1-s$2"
    "$GEOFORGE" train mmgeolm --stage align --tower "$OUT/towers/$1" --llm "$OUT/llm" --data "$OUT/train" \
        --out "$run/align" --max-steps "$ALIGN_STEPS" --batch-size "$BATCH" --seed "$2" --device cpu \
        --max-length 384 --json >"$run.align.json"
    "$GEOFORGE" train mmgeolm --stage sft --init "$run/align" --data "$OUT/train" --out "$run/sft" \
        --max-steps "$SFT_STEPS" --batch-size "$BATCH" --lr "$SFT_LR" --seed "$2" --device cpu --flips \
        --max-length 384 --json >"$run.sft.json"
    "$GEOFORGE" eval mmgeolm --checkpoint "$run/sft" --data "$OUT/heldout" --device cpu --json >"$run.eval.json"
    "$PYTHON" experiments/mmgeolm_blind.py "$run/sft" "$OUT/heldout" "$run.blind.json"
}
for seed in $SEEDS; do
    phase "lmm seed $seed" bash -c "$(declare -f lmm); OUT=$OUT GEOFORGE=$GEOFORGE ALIGN_STEPS=$ALIGN_STEPS \
        SFT_STEPS=$SFT_STEPS BATCH=$BATCH SFT_LR=$SFT_LR PYTHON=$PYTHON; lmm inbatch $seed & lmm mmclip $seed & wait"
done
"$PYTHON" experiments/mmgeolm_table.py "$OUT" | tee "$OUT/results.md"
