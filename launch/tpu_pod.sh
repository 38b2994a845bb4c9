#!/bin/bash
# Starts the same colorjax command on every worker of a Cloud TPU VM pod slice.
#
#   launch/tpu_pod.sh TPU_NAME ZONE configs/unet.py /mnt/shared/runs/unet --config.batch_size=1024
#
# Every worker needs this repository at ~/colorjax (each builds its own .venv with the TPU build
# of JAX, `make install ACCELERATOR=tpu`, a no-op once done), and the workdir on storage all
# workers share. COLORJAX_DISTRIBUTED=1 makes
# colorjax.core.parallel.initialize read the pod's layout from the TPU metadata.
set -euo pipefail
tpu=${1:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.FIELD=VALUE ...]}
zone=${2:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.FIELD=VALUE ...]}
config=${3:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.FIELD=VALUE ...]}
workdir=${4:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.FIELD=VALUE ...]}
shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="cd ~/colorjax && \
make --no-print-directory install ACCELERATOR=tpu && COLORJAX_DISTRIBUTED=1 .venv/bin/python -m colorjax.main --config=$config --workdir=$workdir $*"
