#!/usr/bin/env bash
# Regression and classification side by side: the same backbone (the demo U-Net), the same data
# (the bundled sample photos), the same steps; one table and one grid on the held-out crops.
#
#   launch/compare_regression_classification.sh [OUT [STEPS]]   (defaults: runs/compare 1000)
#
# Writes OUT/prior.npy, OUT/regression, OUT/classification and OUT/compare_grid.png, and prints
# ab error, PSNR, SSIM, CIEDE2000 and colourfulness of each next to the originals'. About 20
# minutes on two CPU cores at 1000 steps. Runs that already exist resume (or are left as they
# are when finished).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/compare}
STEPS=${2:-1000}
PYTHON=${PYTHON:-.venv/bin/python}

if [ ! -f "$OUT/prior.npy" ]; then
  "$PYTHON" -m colorjax.cli prior --config=configs/classify.py:demo --output="$OUT/prior.npy"
fi
"$PYTHON" -m colorjax.main --config=configs/unet.py:demo --workdir="$OUT/regression" \
    --config.num_steps="$STEPS"
"$PYTHON" -m colorjax.main --config=configs/classify.py:demo --workdir="$OUT/classification" \
    --config.num_steps="$STEPS" --config.classify.prior="$OUT/prior.npy"
"$PYTHON" -m colorjax.cli compare --workdir="$OUT/regression" --workdir="$OUT/classification" \
    --output="$OUT/compare_grid.png" --zoom=2
