"""Entry point: ``python -m colorjax.main --config=configs/unet.py --workdir=DIR``.

The config is validated before anything compiles; ``config.mode`` is 'train' (resumes from the
workdir when it holds a run) or 'eval' (evaluates the latest checkpoint on the held-out images,
as ``colorjax evaluate`` does, without FID) or 'benchmark' (training-step throughput on
synthetic batches, as ``colorjax bench`` measures it; nothing is written).
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from colorjax import console, host_memory, validation

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Folder for checkpoints, logs and samples.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'Several processes: host:port of process 0 (or '
    'JAX_COORDINATOR_ADDRESS); SLURM, Open MPI and Cloud TPU pods are detected without it.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Several processes: how many (or JAX_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   "Several processes: this one's index (or JAX_PROCESS_ID).")
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  malloc = host_memory.keep_freed_memory()
  console.quiet_library_logs()
  logging.info('%s', malloc.line)
  from colorjax import evaluation, parallel, runs, train
  config = _CONFIG.value
  try:
    parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    validation.validate(config)
    if config.mode == 'benchmark':
      from colorjax import benchmark
      benchmark.report(config)
    elif config.mode == 'eval':
      report = evaluation.measure(runs.load(_WORKDIR.value, config=config))
      evaluation.write(report, f'{_WORKDIR.value}/eval')
      print(evaluation.markdown(report))
    else:
      train.train_and_evaluate(config, _WORKDIR.value)
  except validation.UserError as e:
    logging.error('%s', e)
    print(f'colorjax: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
