#!/usr/bin/env bash
# Reproduces Tools/benchmark_table.md: the synthetic benchmark's tables in the layout of the paper's Tables 3, 4, 5,
# 7 and 8, for the shipped models trained without and with Odam-Train.
#
# Usage: Tools/benchmark_table.sh [OUTPUT.md]   (after swift build -c release; generates data/synth if missing)
# Environment: ODAM (the binary), DATA (the dataset folder), EXPLAIN_IMAGES (val images for the map metrics, 60),
# DRISE_IMAGES and DRISE_MASKS (D-RISE's subset: 8 images, 1000 masks), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
ODAM=${ODAM:-.build/release/odam}
DATA=${DATA:-data/synth}
OUT=${1:-Tools/benchmark_table.md}
EXPLAIN_IMAGES=${EXPLAIN_IMAGES:-60}
DRISE_IMAGES=${DRISE_IMAGES:-8}
DRISE_MASKS=${DRISE_MASKS:-1000}
THREADS=${THREADS:-2}
MODELS=Sources/DefaultModel/Models
# OpenBLAS settings come from the caller, as in the other benchmark scripts: unset them where OpenBLAS recognizes the
# CPU, set OPENBLAS_CORETYPE=SkylakeX where it does not (this machine's virtual CPU reads as Prescott, about 2x slower).
[ -f "$DATA/val/annotations.json" ] || "$ODAM" synth --out "$DATA" --count 6000 --seed 1 --textures Tests/SampleImages

{
  echo "# The synthetic crowd benchmark"
  echo
  echo "Made by \`Tools/benchmark_table.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, --threads $THREADS), val split of"
  echo "\`odam synth --out $DATA --count 6000 --seed 1 --textures Tests/SampleImages\` ($(python3 -c "import json;print(len(json.load(open('$DATA/val/annotations.json'))['images']))") images),"
  echo "models in \`$MODELS\` (trained by \`odam train --config Tools/training/fcos_synth_{baseline,odamtrain}.json\`)."
  echo "The crowd metrics score the person class; recall \"crowd\" counts people overlapping another person at IoU > 0.5."
  for model in baseline odamtrain; do
    echo
    echo "## Detection and NMS (Tables 7 and 8 layout): FCOS trained $([ $model = odamtrain ] && echo with || echo without) Odam-Train"
    echo
    echo '```'
    "$ODAM" eval detect --threads "$THREADS" --annotations "$DATA/val/annotations.json" --images "$DATA/val" \
      --model "$MODELS/fcos_synth_$model.json" --weights "$MODELS/fcos_synth_$model.safetensors" --nms nms,softnms,odam \
      --crowd-category 1
    echo '```'
  done
  for model in baseline odamtrain; do
    echo
    echo "## Explanations (Tables 3, 4 and 5 layout): FCOS trained $([ $model = odamtrain ] && echo with || echo without) Odam-Train"
    echo
    echo "First $EXPLAIN_IMAGES val images; D-RISE on the first $DRISE_IMAGES of them with $DRISE_MASKS masks (the protocol's 5000 take"
    echo "one forward pass each). Percentages; compactness as a ratio; del/ins AUC over 100 steps of 1% of the box's area."
    echo
    echo '```'
    "$ODAM" eval explain --threads "$THREADS" --annotations "$DATA/val/annotations.json" --images "$DATA/val" \
      --model "$MODELS/fcos_synth_$model.json" --weights "$MODELS/fcos_synth_$model.safetensors" \
      --methods odam,gradcam,gradcampp,drise --limit-images "$EXPLAIN_IMAGES" --drise-images "$DRISE_IMAGES" \
      --drise-masks "$DRISE_MASKS" --faithfulness --sanity
    echo '```'
  done
} > "$OUT"
echo "wrote $OUT"
