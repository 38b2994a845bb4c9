"""Classification over ab bins: the bins against scikit-image, soft encoding, rebalancing, decoding
and the loss against float64 NumPy, the prior command, and a trained run compared with a
regression run and exported."""
import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from colorjax.core import bins, losses, validation, visualize
from colorjax.inference import artifact
from colorjax.tasks import classification
from colorjax.training import experiment, runs, train
from conftest import load_config, run_cli

CENTRES = bins.centres()


def skimage_cells(rgb01):
  """The grid cells (multiples of 10) that scikit-image puts these sRGB colours in."""
  ab = skcolor.rgb2lab(rgb01)[..., 1:].reshape(-1, 2)
  return {tuple(c) for c in 10.0 * np.round(ab / 10.0)}


def test_the_bins_are_the_cells_that_hold_every_8_bit_srgb_colour():
  levels = np.arange(256) / 255.0
  green_blue = np.stack(np.meshgrid(levels, levels, indexing='ij'), -1)
  cells = set()
  for red in levels:  # all 16.7M colours, by scikit-image, one red level at a time
    cells |= skimage_cells(np.concatenate([np.full(green_blue.shape[:2] + (1,), red),
                                           green_blue], -1))
  assert {tuple(c) for c in CENTRES} == cells
  assert len(CENTRES) == 261  # same extent as Zhang et al.'s 313: a in [-90, 100], b in [-110, 90]
  assert (CENTRES.min(0) == (-90, -110)).all() and (CENTRES.max(0) == (100, 90)).all()


@pytest.mark.filterwarnings('ignore:Conversion from CIE-LAB')  # out of gamut, as meant
def test_out_of_gamut_corners_are_excluded_and_bins_round_trip():
  bins_set = {tuple(c) for c in CENTRES}
  L = np.linspace(0, 100, 201)[:, None]
  for corner in ((-110, -110), (-110, 110), (110, -110), (110, 110), (100, -110), (-90, 90)):
    assert corner not in bins_set
    lab = np.concatenate([L, np.broadcast_to(np.asarray(corner, float), (len(L), 2))], -1)
    back = skcolor.rgb2lab(np.clip(skcolor.lab2rgb(lab[:, None]), 0, 1))[:, 0]
    assert np.abs(back - lab).max(-1).min() > 5  # no lightness holds this colour
  assert (0.0, 0.0) in bins_set


def nearest_five_reference(ab, sigma=5.0):
  d2 = np.sum((ab[:, None, :] - CENTRES[None]) ** 2, -1)
  order = np.argsort(d2, axis=-1)[:, :5]
  g = np.exp(-np.take_along_axis(d2, order, -1) / (2 * sigma ** 2))
  return order, g / g.sum(-1, keepdims=True)


def test_soft_encoding_puts_gaussian_weights_on_the_five_nearest_bins():
  rng = np.random.default_rng(0)
  ab = np.concatenate([rng.uniform(-100, 100, (3000, 2)),
                       CENTRES[::7] + rng.uniform(-1, 1, CENTRES[::7].shape)])
  indices, weights = jax.jit(bins.soft_encode)(jnp.asarray(ab, jnp.float32),
                                               jnp.asarray(CENTRES, jnp.float32))
  indices, weights = np.asarray(indices), np.asarray(weights, np.float64)
  order, expected = nearest_five_reference(ab)
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(indices, order)
  np.testing.assert_allclose(weights, expected, atol=1e-5)
  dense = np.zeros((len(ab), len(CENTRES)))
  np.put_along_axis(dense, indices, weights, axis=-1)
  assert (np.count_nonzero(dense, axis=-1) == 5).all()
  np.testing.assert_allclose(dense.sum(-1), 1.0, atol=1e-6)


def smoothed_reference(prior, sigma):
  out = np.zeros(len(CENTRES))
  for q, c in enumerate(CENTRES):
    for r, d in enumerate(CENTRES):
      out[q] += prior[r] * np.exp(-np.sum((c - d) ** 2) / (2 * sigma ** 2))
  return out / out.sum()


def test_rebalancing_weights_have_expectation_one_under_the_smoothed_prior():
  prior = np.random.default_rng(1).dirichlet(np.full(len(CENTRES), 0.3))
  p = smoothed_reference(prior, 5.0)
  w = bins.rebalancing_weights(prior, CENTRES, sigma=5.0, uniform_mix=0.5)
  assert np.sum(p * w) == pytest.approx(1.0, abs=1e-12)
  ratio = w * (0.5 * p + 0.5 / len(CENTRES))  # w ∝ 1 / ((1 - λ) p̃ + λ / Q)
  np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)
  assert w[np.argmax(p)] < 1 < w[np.argmin(p)]  # rare colours weigh more
  np.testing.assert_allclose(bins.rebalancing_weights(prior, CENTRES, uniform_mix=1.0), 1.0)


def test_decoding_annealed_mean_mean_and_mode():
  rng = np.random.default_rng(2)
  logits = rng.normal(0, 3, (4, 3, len(CENTRES)))
  centres = jnp.asarray(CENTRES, jnp.float32)
  decode = lambda method, t=0.38: np.asarray(bins.decode(jnp.asarray(logits, jnp.float32),
                                                         centres, method, t), np.float64)

  def annealed(t):
    z = np.exp((logits - logits.max(-1, keepdims=True)) / t)
    return (z / z.sum(-1, keepdims=True)) @ CENTRES

  np.testing.assert_allclose(decode('annealed_mean', 1.0), decode('mean'), atol=1e-4)
  np.testing.assert_allclose(decode('mean'), annealed(1.0), atol=1e-3)
  np.testing.assert_allclose(decode('annealed_mean'), annealed(0.38), atol=1e-3)
  np.testing.assert_array_equal(decode('mode'), CENTRES[np.argmax(logits, -1)])
  np.testing.assert_allclose(decode('annealed_mean', 1e-3), decode('mode'), atol=1e-3)


def test_rebalanced_cross_entropy_against_float64():
  rng = np.random.default_rng(3)
  logits = rng.normal(0, 2, (2, 5, 6, len(CENTRES)))
  ab = rng.uniform(-80, 80, (2, 5, 6, 2))
  indices, weights = nearest_five_reference(ab.reshape(-1, 2))
  class_weights = rng.uniform(0.2, 3.0, len(CENTRES))
  target = np.zeros((len(indices), len(CENTRES)))
  np.put_along_axis(target, indices, weights, axis=-1)
  flat = logits.reshape(-1, len(CENTRES))
  log_p = flat - flat.max(-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
  expected = np.mean(class_weights[indices[:, 0]] * -(target * log_p).sum(-1))
  got = losses.rebalanced_cross_entropy(
      jnp.asarray(logits, jnp.float32), jnp.asarray(indices.reshape(2, 5, 6, 5)),
      jnp.asarray(weights.reshape(2, 5, 6, 5), jnp.float32),
      jnp.asarray(class_weights[indices[:, 0]].reshape(2, 5, 6), jnp.float32))
  assert float(got) == pytest.approx(expected, rel=1e-5)
  # Its gradient: pixel weight · (softmax - target) / pixels.
  gradient = jax.grad(losses.rebalanced_cross_entropy)(
      jnp.asarray(logits, jnp.float32), jnp.asarray(indices.reshape(2, 5, 6, 5)),
      jnp.asarray(weights.reshape(2, 5, 6, 5), jnp.float32),
      jnp.asarray(class_weights[indices[:, 0]].reshape(2, 5, 6), jnp.float32))
  softmax = np.exp(log_p)
  expected = class_weights[indices[:, 0]][:, None] * (softmax - target) / len(flat)
  np.testing.assert_allclose(np.asarray(gradient).reshape(flat.shape), expected, atol=1e-7)


def tiny_classification(**fields):
  config = load_config('classify')
  config.image_size, config.batch_size, config.num_steps = 32, 4, 2
  config.model.features = (4, 8)
  config.log_every = config.eval_every = config.checkpoint_every = 1
  for field, value in fields.items():
    section, _, name = field.rpartition('.')
    (config[section] if section else config)[name] = value
  return config


def test_predict_gives_ab_in_lab_units_from_n_bins_logits():
  config = experiment.frozen(tiny_classification())
  state = jax.jit(lambda r: classification.init(r, config, (32, 32)))(jax.random.PRNGKey(0))
  L = jnp.linspace(0, 100, 2 * 32 * 32).reshape(2, 32, 32, 1)
  logits = state.model.apply(state.variables(), L / 50 - 1)
  assert logits.shape == (2, 32, 32, len(CENTRES))
  ab = jax.jit(classification.predict)(state, L)
  assert ab.shape == (2, 32, 32, 2)
  assert float(jnp.abs(ab).max()) <= 110


@pytest.mark.parametrize('with_prior', [True, False])
def test_the_step_reads_its_class_weights_from_the_state_and_no_file(with_prior, tmp_path,
                                                                      caplog):
  """init reads the prior (or warns that there is none) once; the traced step reads the
  weights from the state's constants, logs nothing and runs with the file gone."""
  prior = tmp_path / 'prior.npy'
  np.save(prior, np.random.default_rng(6).dirichlet(np.ones(len(CENTRES))))
  config = experiment.frozen(tiny_classification(
      **{'classify.prior': str(prior) if with_prior else ''}))
  state = jax.jit(lambda r: classification.init(r, config, (32, 32)))(jax.random.PRNGKey(0))
  np.testing.assert_array_equal(state.constants['class_weights'],
                                classification.class_weights(config))
  prior.unlink()
  caplog.clear()
  rgb = np.random.default_rng(7).integers(0, 256, (4, 32, 32, 3), np.uint8)
  with caplog.at_level(logging.INFO):
    state, metrics = jax.jit(classification.train_step)(state, {'rgb': jnp.asarray(rgb)})
  assert np.isfinite(float(metrics['loss'])) and int(state.step) == 1
  assert not [r for r in caplog.records if r.name == 'absl']


def test_the_prior_command_writes_a_normalised_distribution(tmp_path):
  output = tmp_path / 'prior.npy'
  result = run_cli('prior', '--config=configs/classify.py', '--config.image_size=32',
                   '--config.batch_size=8', '--images=16', f'--output={output}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'from 16 training crops' in result.stdout
  prior = np.load(output, allow_pickle=False)
  assert prior.shape == (len(CENTRES),) and prior.dtype == np.float64
  assert (prior >= 0).all() and prior.sum() == pytest.approx(1.0, abs=1e-12)
  assert np.count_nonzero(prior) > 20
  np.testing.assert_array_equal(classification.load_prior(str(output)), prior)


def test_the_prior_of_one_flat_colour_is_its_scikit_image_bin(tmp_path):
  rgb = np.broadcast_to(np.asarray([200, 40, 30], np.uint8), (40, 48, 3))
  (tmp_path / 'flat').mkdir()
  Image.fromarray(np.ascontiguousarray(rgb)).save(tmp_path / 'flat' / 'red.png')
  config = tiny_classification(**{'data.source': f'folder:{tmp_path / "flat"}',
                                  'data.eval_fraction': 0.0})
  prior, seen = classification.empirical_prior(config, 8)
  (cell,) = skimage_cells(rgb[:1, :1] / 255.0)
  assert seen == 8 and prior[[tuple(c) for c in CENTRES].index(cell)] == 1.0


def test_a_bad_prior_file_is_one_sentence(tmp_path):
  path = tmp_path / 'prior.npy'
  np.save(path, np.full(10, 0.1))
  config = tiny_classification(**{'classify.prior': str(path)})
  with pytest.raises(validation.UserError, match=r'is not a prior over the 261 ab bins'):
    experiment.validate(config)


def test_without_a_prior_the_weights_are_uniform_rebalancing_with_one_warning(caplog):
  with caplog.at_level(logging.WARNING):
    experiment.validate(tiny_classification())   # training checks its config first
    weights = classification.class_weights(tiny_classification())
  (record,) = [r for r in caplog.records if 'prior' in r.getMessage()]
  assert record.getMessage().count('. ') == 0 and 'uniform prior' in record.getMessage()
  expected = bins.rebalancing_weights(np.full(len(CENTRES), 1 / len(CENTRES)), CENTRES)
  np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_a_classification_run_compares_with_regression_and_exports(trained_run, tmp_path):
  workdir = tmp_path / 'classification'
  prior = tmp_path / 'prior.npy'
  np.save(prior, np.random.default_rng(4).dirichlet(np.ones(len(CENTRES))))
  train.train_and_evaluate(tiny_classification(**{'classify.prior': str(prior)}), str(workdir))
  result = run_cli('compare', f'--workdir={trained_run}', f'--workdir={workdir}',
                   f'--output={tmp_path / "grid.png"}')
  assert result.returncode == 0, result.stderr[-3000:]
  (row,) = [line for line in result.stdout.splitlines()
            if line.startswith('| classification (classification, step 2) |')]
  with open(workdir / 'metrics.jsonl') as f:
    last = [json.loads(line) for line in f if 'eval/ab_error' in line][-1]
  columns = [c.strip() for c in row.split('|')[2:-1]]  # PSNR, SSIM, ab error, ΔE, colourfulness
  assert float(columns[2]) == pytest.approx(last['eval/ab_error'], rel=1e-3)
  assert float(columns[4]) == pytest.approx(last['eval/colourfulness'], rel=1e-3)
  # One eval batch of 4 held-out crops: gray | regression | classification | original, under a
  # header naming each column (dark text in every column's part of it).
  grid = np.asarray(Image.open(tmp_path / 'grid.png'))
  top = visualize.LABEL_HEIGHT + 2
  assert grid.shape == (top + 4 * 34 - 2, 4 * 34 - 2, 3)
  assert all(grid[:top, 34 * c:34 * c + 32].min() < 100 for c in range(4))
  assert grid[:top, 32:34].min() == 255  # nothing drawn in the gaps: labels are cut to fit
  prior.unlink()  # only training reads the prior: the run still loads without it
  run = runs.load(str(workdir))
  runs.check_resolution(run, 64)  # what colorize and export ask before they run
  L = jnp.asarray(np.random.default_rng(5).uniform(0, 100, (3, 32, 32, 1)), jnp.float32)
  artifact.save(str(tmp_path / 'model.cjx'), run, 32, ('cpu',))
  np.testing.assert_allclose(artifact.Exported(str(tmp_path / 'model.cjx'))(L),
                             jax.jit(run.task.predict)(run.state, L), atol=1e-3)
