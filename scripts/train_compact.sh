#!/usr/bin/env bash
# Reproduces the shipped compact weights (face2scene/weights/compact/): FaDeX on its own, then the
# compact token-conditioned restorer jointly with MapNet (FaDeX frozen). CPU, one thread, seeded,
# time-boxed (24 + 36 minutes); re-running resumes from runs/compact/*/checkpoint.
#   usage: scripts/train_compact.sh [DATA_ROOT] [OUT]      (default ../shared/data, runs/compact)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/compact}
PY=${PYTHON:-python}
mkdir -p "$OUT"
echo '{"max_minutes": 24.0}' > "$OUT/fadex.json"
echo '{"max_minutes": 36.0}' > "$OUT/restorer.json"
$PY -m face2scene.train.cli fadex --data "$DATA/identities" "$DATA/scenes" --out "$OUT" --config "$OUT/fadex.json"
$PY -m face2scene.train.cli restorer --data "$DATA/identities" "$DATA/scenes" --out "$OUT" \
    --fadex "$OUT/fadex" --config "$OUT/restorer.json"
echo "weights in $OUT/compact (copy to face2scene/weights/compact/)"
