#!/usr/bin/env bash
# Reproduces the shipped compact weights (face2scene/weights/compact/): FaDeX on its own, then the
# compact token-conditioned restorer jointly with MapNet (FaDeX frozen). CPU, one thread, seeded,
# time-boxed (24 + 36 minutes of wall clock); re-running resumes from OUT/checkpoint_*/.
#   usage: scripts/train_compact.sh [DATA_ROOT] [OUT]      (default ../shared/data, runs/compact)
#   SHIP=1 scripts/train_compact.sh ...   also copies the result into face2scene/weights/compact/
# Time-boxed runs are seeded but the number of steps depends on the machine's speed; the shipped
# run's step counts are in face2scene/weights/compact/README.md (set "max_steps" and
# "max_minutes": 0 in the JSON configs below to repeat a run step for step).
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/compact}
PY=${PYTHON:-python}
mkdir -p "$OUT"
[ -f "$OUT/fadex.json" ] || echo '{"max_minutes": 24.0}' > "$OUT/fadex.json"
[ -f "$OUT/restorer.json" ] || echo '{"max_minutes": 36.0}' > "$OUT/restorer.json"
$PY -m face2scene.train.cli fadex --data "$DATA/identities" "$DATA/scenes" --out "$OUT" --config "$OUT/fadex.json"
$PY -m face2scene.train.cli restorer --data "$DATA/identities" "$DATA/scenes" --out "$OUT" \
    --fadex "$OUT/fadex" --config "$OUT/restorer.json"
cp "$OUT/train_config.json" "$OUT/compact/fadex_train_config.json"
cp "$OUT/loss_fadex.png" "$OUT/loss_restorer.png" "$OUT/compact/"
echo "weights in $OUT/compact"
if [ "${SHIP:-0}" = 1 ]; then
    DEST=face2scene/weights/compact
    mkdir -p "$DEST"
    cp -r "$OUT/compact/." "$DEST/"
    echo "copied to $DEST"
fi
