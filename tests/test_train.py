"""The training core end to end: every config, many devices, resume, warm start, bad configs."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from colorjax.core import validation
from colorjax.data.sources import DataError
from colorjax.training import experiment, train
from conftest import ROOT, cpu_devices_env, load_config, write_colour_images

HERE = os.path.dirname(__file__)


def tiny(config, steps=1):
  config.image_size = 32
  config.batch_size = 4
  config.num_steps = steps
  config.model.features = (4, 8)
  config.log_every = config.eval_every = config.checkpoint_every = 1
  return config


def run_training(workdir, steps, *overrides, devices=1):
  result = subprocess.run([sys.executable, os.path.join(HERE, 'run_training.py'), str(workdir),
                           str(steps), *overrides], cwd=ROOT, env=cpu_devices_env(devices),
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return dict(np.load(os.path.join(workdir, 'params.npz')))


def train_command(workdir, *overrides, prelude=''):
  """``colorjax train`` of the default config at test size in a fresh process, which first runs
  the Python in ``prelude`` (a resource limit, a patch)."""
  code = f'{prelude}\nimport sys\nfrom colorjax import cli\nsys.exit(cli.main(sys.argv))'
  return [sys.executable, '-c', code, 'train', '--config=configs/default.py', f'--workdir={workdir}',
          '--config.image_size=32', '--config.batch_size=8', '--config.model.features=(4,8)',
          '--config.log_every=1', '--config.eval_every=1000', '--config.keep_best=0', *overrides]


ENV = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}


def read_jsonl(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def wait_for_logged_steps(process, workdir, steps, timeout=300):
  """Returns once ``workdir``'s training has logged ``steps`` lines (or ``process`` ended)."""
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    if os.path.exists(workdir / 'metrics.jsonl') and len(read_jsonl(workdir)) >= steps:
      return
    time.sleep(0.2)


@pytest.mark.parametrize('name', ['default', 'unet', 'unet:demo', 'fusion', 'classify'])
def test_one_step_of_every_config(name, tmp_path):
  file, _, variant = name.partition(':')
  config = tiny(load_config(file, variant))
  train.train_and_evaluate(config, str(tmp_path))
  assert os.path.isdir(tmp_path / 'checkpoints' / '1' / 'state')
  records = read_jsonl(tmp_path)
  assert any('train/loss' in r for r in records) and any('eval/ab_error' in r for r in records)
  assert os.path.isfile(tmp_path / 'samples' / 'step_000001.png')


def test_one_and_eight_devices_reach_the_same_params(tmp_path):
  one = run_training(tmp_path / 'one', 3, devices=1)
  eight = run_training(tmp_path / 'eight', 3, devices=8)
  assert one.keys() == eight.keys()
  for name in one:
    np.testing.assert_allclose(one[name], eight[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_resume_continues_exactly(tmp_path):
  """Regression here; the resume is task-agnostic, and test_gan resumes the GAN tasks' nested
  states and image pools."""
  schedule = ('optim.schedule="cosine"', 'optim.warmup_steps=2')
  straight = run_training(tmp_path / 'straight', 4, *schedule)
  run_training(tmp_path / 'resumed', 2, *schedule, 'checkpoint_every=2')
  resumed = run_training(tmp_path / 'resumed', 4, *schedule, 'checkpoint_every=2')
  for name in straight:
    np.testing.assert_allclose(straight[name], resumed[name], rtol=1e-5, atol=1e-6,
                               err_msg=name)
  logged = lambda d: {r['step']: (r['train/lr'], r['train/loss'])
                      for r in read_jsonl(d) if 'train/loss' in r}
  a, b = logged(tmp_path / 'straight'), logged(tmp_path / 'resumed')
  assert sorted(a) == sorted(b) == [1, 2, 3, 4]
  for step in a:
    np.testing.assert_allclose(a[step], b[step], rtol=1e-5)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
  config = tiny(load_config(), steps=6)
  config.checkpoint_every = 2
  config.optim.lr = 1e35
  with pytest.raises(train.NonFiniteLoss,
                     match=r'non-finite at step \d+ \(.*\); training stopped; the last good'):
    train.train_and_evaluate(config, str(tmp_path))
  for step in os.listdir(tmp_path / 'checkpoints'):
    with ocp.StandardCheckpointer() as checkpointer:
      params = checkpointer.restore(tmp_path / 'checkpoints' / step / 'state')['params']
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params)), step


def test_init_from_a_different_model_names_the_parameter(tmp_path):
  train.train_and_evaluate(tiny(load_config()), str(tmp_path / 'small'))
  config = tiny(load_config())
  config.model.features = (4, 16)
  config.init_from = str(tmp_path / 'small')
  with pytest.raises(validation.UserError, match=r'has shape \(.*\) there and \(.*\) here'):
    train.train_and_evaluate(config, str(tmp_path / 'big'))
  config.model.features = (4, 8)
  state = train.train_and_evaluate(config, str(tmp_path / 'warm'))
  assert int(state.step) == 1


@pytest.mark.parametrize('field, value, message', [
    ('task', 'gan', "config.task='gan' is not allowed; use one of 'regression'"),
    ('num_steps', 0, r'config.num_steps=0 is not allowed; use an integer in \[1, inf\)'),
    ('optim.lr', -1.0, r'config.optim.lr=-1.0 is not allowed; use a number in \(0, inf\)'),
    ('optim.b1', 1.0, r'config.optim.b1=1.0 is not allowed; use a number in \[0, 1\)'),
    ('optim.lr', float('inf'), r'config.optim.lr=inf is not allowed; use a number in \(0, inf\)'),
    ('optim.lr', float('nan'), r'config.optim.lr=nan is not allowed'),
    ('model.dropout', 2.0, r'config.model.dropout=2.0 is not allowed; use a rate in \[0, 1\)'),
    ('loss.weights', {}, r"config.loss.weights=\{\} is not allowed; give at least one positive "
     'weight'),
    ('loss.weights', {'l1': 0.0}, r'config.loss.weights=\{.l1.: 0.0\} is not allowed'),
    ('image_size', 65536, r'config.image_size=65536 is not allowed; a batch of 16 such crops '
     r'needs 768 GiB, more than a quarter of this host.s \d+ GiB, so use at most \d+\.'),
    ('optim.clip_norm', -1.0, r'config.optim.clip_norm=-1.0 is not allowed'),
    ('keep_best', -1, r'config.keep_best=-1 is not allowed'),
    ('optim.warmup_steps', -1, r'config.optim.warmup_steps=-1 is not allowed'),
    ('data.threads', -1, r'config.data.threads=-1 is not allowed; use an integer in \[0, inf\)'),
    ('optim.schedule', 'step', "use one of 'constant', 'warmup', 'linear', 'cosine'"),
    ('compute_dtype', 'float16', "use one of 'float32', 'bfloat16'"),
    ('model.preset', 'resnet', "use one of 'portrait', 'pix2pix'"),
    ('model.norm', 'layer', "use one of 'batch', 'instance', 'none'"),
    ('image_size', 40, 'total stride of 16, so use a multiple of 16'),
    ('loss.weights', {'l3': 1.0}, r'config.loss.weights.l3=1.0 is not allowed'),
    ('init_from', '/no/such/run', "config.init_from='/no/such/run' is not allowed"),
    ('best_metric', 'fid', "use one of 'ab_error', 'delta_e', 'psnr', 'ssim'"),
    ('profile_steps', (5,), r'config.profile_steps=\(5,\) is not allowed; use \(first step, '
     r'count\)'),
    ('model.name', 'gan', "config.model.name='gan' is not allowed; use one of 'unet', "
     "'fusion', 'vgg', 'resnet'"),
    ('cgan:gan.objective', 'wgan', "config.gan.objective='wgan' is not allowed; use one of "
     "'vanilla', 'lsgan', 'hinge'"),
    ('cgan:gan.discriminator', 'stylegan', "use one of 'patchgan', 'vgg'"),
    ('cgan:gan.l1_weight', -1.0, r'config.gan.l1_weight=-1.0 is not allowed; use a number in '
     r'\[0, inf\)'),
    ('cgan:gan.d_layers', 7, 'with gan.d_layers=7; the PatchGAN needs at least 384 pixels'),
    ('cgan:gan.d_head', (0,), r'config.gan.d_head=\(0,\) is not allowed'),
    ('vgg_gan:image_size', 224, "gan.discriminator='vgg'; it pools 6 times, so use a multiple "
     'of 64'),
    ('cyclegan:data.pairing', 'paired', "task 'cyclegan' trains on unpaired batches, so use "
     "'unpaired'"),
    ('cyclegan:model.name', 'fusion', "config.model.name='fusion' is not allowed; use one of "
     "'unet', 'resnet'"),
    ('cyclegan:model.blocks', -1, r'config.model.blocks=-1 is not allowed; use an integer in '
     r'\[0, inf\)'),
    ('cyclegan:gan.discriminator', 'vgg', "use one of 'patchgan'"),
    ('cyclegan:gan.pool_size', -1, r'config.gan.pool_size=-1 is not allowed'),
    ('cyclegan:optim.decay_start', 1.5, r'config.optim.decay_start=1.5 is not allowed; use a '
     r'number in \[0, 1\]'),
    # CONFIG:FIELD sets FIELD in configs/CONFIG.py (default: configs/default.py).
    ('fusion:model.preset', 'portrait', "use one of 'koalarization', 'global_local'"),
    ('fusion:model.vgg_features', 'fc1', "config.model.vgg_features='fc1' is not allowed; use "
     "one of 'pool', 'fc2'"),
    ('fusion:model.vgg_trainable', None, 'config.model.vgg_trainable=None is not allowed'),
    ('fusion:model.vgg_weights', '/no/vgg16.h5', "config.model.vgg_weights='/no/vgg16.h5' is not "
     'allowed; use the path of a Keras VGG16 .h5 file'),
    ('fusion:model.fusion_features', 0, r'config.model.fusion_features=0 is not allowed; use an '
     r'integer in \[1, inf\)'),
    ('fusion:image_size', 48, 'total stride of 32, so use a multiple of 32'),
    ('classify:classify.decode', 'median', "use one of 'annealed_mean', 'mean', 'mode'"),
    ('classify:classify.temperature', 0.0, r'config.classify.temperature=0.0 is not allowed; use '
     r'a number in \(0, inf\)'),
    ('classify:classify.neighbours', 0, r'config.classify.neighbours=0 is not allowed; use an '
     r'integer in \[1, 261\]'),
    ('classify:classify.sigma', -5.0, r'config.classify.sigma=-5.0 is not allowed'),
    ('classify:classify.prior_sigma', 0.0, r'config.classify.prior_sigma=0.0 is not allowed'),
    ('classify:classify.uniform_mix', 0.0, r'config.classify.uniform_mix=0.0 is not allowed; '
     r'use a number in \(0, 1\]'),
    ('classify:classify.prior', '/no/prior.npy', "config.classify.prior='/no/prior.npy' is not "
     'allowed; use a .npy file written by colorjax prior'),
    ('classify:model.output_activation', 'tanh', "config.model.output_activation='tanh' is not "
     "allowed; task 'classification' sets it to 'none'"),
])
def test_bad_training_config_names_the_field(field, value, message):
  file, _, field = field.rpartition(':')
  config = load_config(file or 'default')
  *parents, name = field.split('.')
  node = config
  for parent in parents:
    node = node[parent]
  node[name] = value
  with pytest.raises(validation.ConfigError, match=message):
    experiment.validate(config)


def test_demo_unet_beats_the_no_colour_baseline_on_held_out_crops(tmp_path):
  """The demo network and data (held-out strips of the sample photos), at 32² and fewer
  steps so that it fits the test budget; make demo itself reaches a lower error."""
  config = load_config('unet', 'demo')
  config.image_size = 32
  config.num_steps = 120
  config.loss.switch_step = 0
  config.eval_every = config.checkpoint_every = 120
  train.train_and_evaluate(config, str(tmp_path))
  final = [r for r in read_jsonl(tmp_path) if 'eval/ab_error' in r][-1]
  assert final['eval/ab_error'] < 0.9 * final['eval/ab_error_gray'], final


def test_sigterm_saves_a_checkpoint_exits_cleanly_and_resumes_exactly(tmp_path):
  workdir = tmp_path / 'stopped'
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  command = [sys.executable, os.path.join(HERE, 'run_training.py'), str(workdir)]
  process = subprocess.Popen(command + ['100000'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  try:
    wait_for_logged_steps(process, workdir, 3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=240)
  finally:
    process.kill()
  assert process.returncode == 0, stderr[-3000:]
  stopped = max(int(s) for s in os.listdir(workdir / 'checkpoints'))
  assert f'Stopped by SIGTERM at step {stopped}' in stderr
  assert 3 <= stopped < 100000
  resumed = run_training(workdir, stopped + 2)
  straight = run_training(tmp_path / 'straight', stopped + 2)
  for name in straight:
    np.testing.assert_allclose(straight[name], resumed[name], rtol=1e-5, atol=1e-6,
                               err_msg=name)


def test_kill_9_at_any_moment_resumes_to_the_same_params(tmp_path):
  """SIGKILL at several points, some right as an asynchronous save starts: each restart picks
  the last complete checkpoint, and the run ends where an uninterrupted one does."""
  steps = ['14', 'checkpoint_every=2']
  straight = run_training(tmp_path / 'straight', *steps)
  workdir = tmp_path / 'killed'
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  for kill_after in (3, 6, 10):
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'run_training.py'), str(workdir), *steps], cwd=ROOT,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
      logged = read_jsonl(workdir) if os.path.exists(workdir / 'metrics.jsonl') else []
      if any(r['step'] >= kill_after for r in logged):
        break
      time.sleep(0.02)
    process.kill()
    process.wait()
  resumed = run_training(workdir, *steps)
  for name in straight:
    np.testing.assert_allclose(straight[name], resumed[name], rtol=1e-5, atol=1e-6,
                               err_msg=name)


def test_a_full_disk_at_save_time_is_one_error_and_the_previous_checkpoint_survives(tmp_path):
  """Writes past 20 kB fail (RLIMIT_FSIZE, as on a full disk: the OS refuses the write) from
  step 2 on: the save at step 4 fails, training stops with one error naming it, checkpoint 2
  is intact, and once there is room the run resumes from it to the uninterrupted result."""
  steps = ['8', 'checkpoint_every=2']
  workdir = tmp_path / 'full'
  run_training(workdir, 2, *steps[1:])
  limited = ('import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN);'
             'resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY));'
             'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")')
  result = subprocess.run(
      [sys.executable, '-c', limited, os.path.join(HERE, 'run_training.py'), str(workdir),
       *steps], cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode != 0
  # Orbax's writer threads also log the failure, in any order: find colorjax's one error.
  (error,) = [line for line in result.stderr.splitlines()
              if line.startswith('colorjax.training.checkpoint.CheckpointError: ')]
  assert error.startswith('colorjax.training.checkpoint.CheckpointError: The checkpoint at step 4 could '
                          'not be written'), error
  assert '(File too large; its partial folder is removed)' in error
  assert error.endswith(f'the last complete checkpoint is {workdir}/checkpoints/2. Training '
                            'stopped at step 6; make room and run the same command to resume.')
  assert sorted(p for p in os.listdir(workdir / 'checkpoints') if p.isdigit()) == ['2']
  resumed = run_training(workdir, *steps)
  straight = run_training(tmp_path / 'straight', *steps)
  for name in straight:
    np.testing.assert_allclose(straight[name], resumed[name], rtol=1e-5, atol=1e-6,
                               err_msg=name)


FULL_DISK = ('import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n'
             'resource.setrlimit(resource.RLIMIT_FSIZE, ({}, resource.RLIM_INFINITY))')


def error_lines(log):
  """The lines of a log that report an error: absl's E lines, tracebacks, exceptions' last
  lines and colorjax's sentence."""
  return [line for line in log.splitlines()
          if re.match(r'E\d{4} |Traceback|colorjax train: |[\w.]*(Error|Exception)\b', line)]


def test_a_full_disk_is_one_sentence_first_during_training_and_at_start_up(tmp_path):
  """The disk fills during training, then stays full for the reruns (RLIMIT_FSIZE, as above):
  each log's only error line is one sentence, with no traceback; no partial checkpoint folder
  stays; a start on the full disk leaves config.json as it was."""
  workdir = tmp_path / 'run'
  run = lambda steps, limit=None: subprocess.run(
      train_command(workdir, '--config.checkpoint_every=2', f'--config.num_steps={steps}',
                    prelude=FULL_DISK.format(limit) if limit is not None else ''),
      cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
  assert run(2).returncode == 0
  during = (f'colorjax train: The checkpoint at step 4 could not be written to {workdir}/'
            'checkpoints (File too large; its partial folder is removed); the last complete '
            f'checkpoint is {workdir}/checkpoints/2. Training stopped at step 6; make room and '
            'run the same command to resume.')
  start_up = (f'colorjax train: Cannot write to the workdir {workdir} (File too large); make room '
              'and run the same command.')
  for limit, sentence in ((20000, during), (20000, during), (0, start_up)):
    config = (workdir / 'config.json').read_bytes()
    result = run(8, limit)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [sentence], result.stderr[-3000:]
    assert sorted(os.listdir(workdir / 'checkpoints')) == ['2']
  assert (workdir / 'config.json').read_bytes() == config


def signal_on_lines(command, cues, expected_code):
  """Runs ``command``; when a stderr line matches the next cue's pattern (re.search), sends
  that cue's signal; after the last cue, waits for ``expected_code`` (at most 60 s). Returns
  the stderr lines."""
  process = subprocess.Popen(command, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, text=True)
  lines, cues = [], list(cues)
  try:
    for line in process.stderr:
      lines.append(line)
      pattern, signum = cues[0]
      if re.search(pattern, line):
        process.send_signal(signum)
        cues.pop(0)
        if not cues:
          break
    assert process.wait(timeout=60) == expected_code
  finally:
    process.kill()
  return lines + process.stderr.readlines()


@pytest.mark.parametrize('after', ['malloc:', 'local of 1 devices'])
def test_sigterm_during_start_up_is_one_sentence_and_exit_143(tmp_path, after):
  """SIGTERM while JAX and TensorFlow load (after the malloc line) or while the state is built
  (after the device line): one sentence and exit 143 within seconds, never a hang."""
  workdir = tmp_path / 'run'
  lines = signal_on_lines(train_command(workdir, '--config.num_steps=2'),
                          [(after, signal.SIGTERM)], 143)
  assert lines[-1].strip() == ('colorjax train: stopped by SIGTERM before the training loop '
                               'started (or after it ended); the last complete checkpoint, if '
                               f'any, stays in {workdir}.')
  assert not any('Traceback' in line for line in lines)


SLOW_SAVE = """
import os, time, orbax.checkpoint as ocp
save = ocp.CheckpointManager.save
def slow(self, step, *args, **kwargs):
  os.write(2, f'saving {step}\\n'.encode())
  time.sleep(60)
  return save(self, step, *args, **kwargs)
ocp.CheckpointManager.save = slow
"""


def test_a_second_ctrl_c_while_saving_is_one_sentence_naming_the_last_checkpoint(tmp_path):
  """Ctrl-C, then Ctrl-C again while the stop's checkpoint is being saved (a slow save): one
  sentence naming the last complete checkpoint, exit 130, no traceback, no false 'could not be
  written'; nothing but complete checkpoints stays."""
  workdir = tmp_path / 'run'
  first = subprocess.run(train_command(workdir, '--config.num_steps=2'), cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-3000:]
  lines = signal_on_lines(
      train_command(workdir, '--config.num_steps=100000', '--config.checkpoint_every=100000',
                    prelude=SLOW_SAVE), [(r'\] \[3\] train/', signal.SIGINT),
                                         ('^saving ', signal.SIGINT)], 130)
  saving = next(int(line.split()[1]) for line in lines if line.startswith('saving '))
  assert lines[-1].strip() == (
      f'colorjax train: Interrupted at step {saving} while the checkpoint at step {saving} was '
      f'being saved; the last complete checkpoint is {workdir}/checkpoints/2, and the same '
      'command resumes from it.')
  assert error_lines(''.join(lines)) == [lines[-1].strip()]
  assert os.listdir(workdir / 'checkpoints') == ['2']


SLOW_EVAL = """
import os, time
from colorjax import evaluation
jitted = evaluation.jitted_eval_step
def slow(*args, **kwargs):
  step = jitted(*args, **kwargs)
  def each(state, batch):
    os.write(2, b'eval batch\\n')
    time.sleep(1)
    return step(state, batch)
  return each
evaluation.jitted_eval_step = slow
"""


def test_sigterm_during_eval_stops_after_the_eval_batch_in_flight(tmp_path):
  """SIGTERM during training's eval pass (6 batches of a second each): the rest of the pass is
  skipped, the run saves after the next step and exits 0."""
  write_colour_images(tmp_path / 'images', 24)
  workdir = tmp_path / 'run'
  lines = signal_on_lines(
      train_command(workdir, '--config.num_steps=100000', '--config.eval_every=3',
                    '--config.batch_size=2', f'--config.data.source=folder:{tmp_path / "images"}',
                    '--config.data.eval_fraction=0.5', prelude=SLOW_EVAL),
      [('^eval batch', signal.SIGTERM)], 0)
  log = ''.join(lines)
  assert log.count('eval batch') == 1, log[-3000:]
  assert 'Skipped the rest of the eval at step 3 to stop.' in log
  assert 'Stopped by SIGTERM at step 4; the checkpoint' in log
  assert os.listdir(workdir / 'checkpoints') == ['4']


def test_an_unwritable_workdir_is_one_sentence(tmp_path):
  (tmp_path / 'file').write_text('not a folder')
  result = subprocess.run(
      [sys.executable, '-m', 'colorjax.main', '--config=configs/unet.py:demo',
       f'--workdir={tmp_path / "file" / "run"}'], cwd=ROOT, capture_output=True, text=True,
      timeout=300, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 2
  sentence = f'Cannot write to the workdir {tmp_path / "file" / "run"} (Not a directory).'
  assert result.stderr.strip().splitlines()[-1] == f'colorjax train: {sentence}'
  assert result.stderr.count(sentence) == 1  # said once
  # the one line saying how malloc is set (the tests keep glibc's defaults)
  assert 'malloc: glibc defaults (COLORJAX_MALLOC=system).' in result.stderr


def test_skip_nonfinite_skips_and_counts_diverged_steps_instead_of_stopping(tmp_path):
  config = tiny(load_config(), steps=6)
  config.optim.lr = 1e35  # the first update blows the params up; every later step is non-finite
  config.skip_nonfinite = True
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 6
  logged = [r for r in read_jsonl(tmp_path) if 'train/skipped' in r]
  assert sum(r['train/skipped'] for r in logged) >= 4
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_profile_steps_write_a_trace_of_that_window(tmp_path):
  config = tiny(load_config(), steps=4)
  config.profile_steps = (1, 2)
  train.train_and_evaluate(config, str(tmp_path))
  traces = [f for _, _, files in os.walk(tmp_path / 'profile') for f in files
            if f.endswith('.xplane.pb')]
  assert len(traces) == 1


@pytest.mark.parametrize('source', ['tfds:cifar10', 'tfds:no_such_dataset_xyz',
                                    'folder:/no/such/folder', 'folder:EMPTY'])
def test_a_start_on_missing_data_is_one_sentence_and_leaves_no_workdir(tmp_path, source):
  config = tiny(load_config(), steps=2)
  config.data.source = source.replace('EMPTY', str(tmp_path / 'empty'))
  config.data.data_dir = str(tmp_path / 'tensorflow_datasets')   # nothing prepared there
  (tmp_path / 'empty').mkdir()
  with pytest.raises(DataError):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
