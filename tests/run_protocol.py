"""Evaluates a run under a protocol cut to COUNT images (for the multi-process test).

  python tests/run_protocol.py RUN DATA_DIR FID_WEIGHTS COUNT OUTPUT.json

Several processes when started by launch/local.py; process 0 writes the report.
"""
import dataclasses
import json
import sys

import jax

from colorjax import evaluation
from colorjax.core import parallel
from colorjax.data import protocols
from colorjax.training import runs


def main(workdir, data_dir, fid_weights, count, output):
  parallel.initialize()  # several processes when JAX_COORDINATOR_ADDRESS etc. say so
  protocol = dataclasses.replace(protocols.PROTOCOLS['val5k'], count=int(count), image_size=64)
  report = evaluation.measure_protocol(runs.load(workdir), protocol,
                                       evaluation.load_fid('keras', fid_weights), data_dir)
  if jax.process_index() == 0:
    with open(output, 'w') as f:
      json.dump(report, f)


if __name__ == '__main__':
  main(*sys.argv[1:])
