#!/usr/bin/env bash
# Reproduces the shipped compact weights (face2scene/weights/compact/), CPU, seeded, time-boxed;
# re-running resumes from the checkpoints (OUT/*/checkpoint_*/).
#   1. FaDeX from scratch with the clean-face stand-in restoration          (24 min)  OUT/v1
#   2. face pairs restored by the real embedded Ref-FR (training split only) (~9 min)  OUT/reffr_pairs
#   3. FaDeX fine-tuned from 1 on a mix of Ref-FR pairs and synthetic pairs  (12 + 10 min)  OUT/v2
#   4. the guided compact restorer jointly with MapNet, FaDeX frozen         (80 min)  OUT/v2/compact
#   usage: scripts/train_compact.sh [DATA_ROOT] [OUT]      (default ../shared/data, runs/compact)
#   SHIP=1 scripts/train_compact.sh ...   also copies the result into face2scene/weights/compact/
# Time-boxed runs are seeded but their step counts depend on the machine's speed; the shipped run's
# step counts are in face2scene/weights/compact/README.md (set "max_steps" and "max_minutes": 0 in
# the JSON configs to repeat a run step for step).
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/compact}
PY=${PYTHON:-python}
TRAIN=("$DATA/identities" "$DATA/scenes")
mkdir -p "$OUT/v1" "$OUT/v2"

# 1. FaDeX v1
[ -f "$OUT/v1/fadex.json" ] || echo '{"max_minutes": 24.0}' > "$OUT/v1/fadex.json"
$PY -m face2scene train fadex --data "${TRAIN[@]}" --out "$OUT/v1" --config "$OUT/v1/fadex.json"

# 2. Ref-FR pairs (24 degradations in a shared bank, 6 per training person photo)
$PY -m face2scene train reffr-pairs --data "$DATA/identities" --out "$OUT/reffr_pairs" --bank 24 --per-photo 6

# 3. FaDeX fine-tuned on Ref-FR pairs: 12 min (batch 12, p 0.6), then to 22 min (batch 16, p 0.7)
cat > "$OUT/v2/fadex_a.json" <<EOF
{"reffr_pairs": "$OUT/reffr_pairs", "reffr_prob": 0.6, "init": "$OUT/v1/fadex", "lr": 2e-4, "max_minutes": 12.0}
EOF
cat > "$OUT/v2/fadex_b.json" <<EOF
{"reffr_pairs": "$OUT/reffr_pairs", "reffr_prob": 0.7, "init": "$OUT/v1/fadex", "lr": 2e-4, "max_minutes": 22.0, "batch": 16}
EOF
$PY -m face2scene train fadex --data "${TRAIN[@]}" --out "$OUT/v2" --config "$OUT/v2/fadex_a.json"
$PY -m face2scene train fadex --data "${TRAIN[@]}" --out "$OUT/v2" --config "$OUT/v2/fadex_b.json"

# 4. the guided compact restorer (unshuffle 2, 32-64-96, global token modulation) + MapNet, one
#    80-minute time box in two legs: steps 0-1000 with 64-px windows of the Ref-FR pairs for the
#    tokens, then (resumed) the whole Ref-FR faces, coded as the pipeline codes them, and 96-px
#    crops for the synthetic half
R='"restorer": {"unshuffle": 2, "block_out_channels": [32, 64, 96], "layers_per_block": 1, "cross_attention_dim": 64,
               "attention_head_dim": 8, "cross_attention_levels": 2, "guided": true, "global_condition": true}'
cat > "$OUT/v2/restorer_a.json" <<EOF
{$R, "reffr_pairs": "$OUT/reffr_pairs", "reffr_prob": 0.5, "reffr_whole_face": false, "lr": 3e-4,
 "max_minutes": 80.0, "max_steps": 1000, "threads": 2, "ckpt_every": 200}
EOF
cat > "$OUT/v2/restorer_b.json" <<EOF
{$R, "reffr_pairs": "$OUT/reffr_pairs", "reffr_prob": 0.5, "reffr_whole_face": true, "face_crop": 96, "lr": 3e-4,
 "max_minutes": 80.0, "threads": 2, "ckpt_every": 200}
EOF
for leg in a b; do
    $PY -m face2scene train restorer --data "${TRAIN[@]}" --out "$OUT/v2" --fadex "$OUT/v2/fadex" \
        --config "$OUT/v2/restorer_$leg.json"
done
cp "$OUT/v2/train_config.json" "$OUT/v2/compact/fadex_train_config.json"
cp "$OUT/v2/loss_fadex.png" "$OUT/v2/loss_restorer.png" "$OUT/v2/compact/"
echo "weights in $OUT/v2/compact"
if [ "${SHIP:-0}" = 1 ]; then
    DEST=face2scene/weights/compact
    mkdir -p "$DEST"
    cp -r "$OUT/v2/compact/." "$DEST/"
    echo "copied to $DEST"
fi
