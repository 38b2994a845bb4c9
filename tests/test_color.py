"""colorjax.core.color against scikit-image (float64) over the whole 8-bit RGB cube."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor

from colorjax.core import color


@pytest.fixture(scope='module')
def cube():
  """A million random 8-bit colours, the cube's 8 corners and the full grey axis, in [0, 1]."""
  rng = np.random.default_rng(0)
  colours = rng.integers(0, 256, (1_000_000, 3))
  corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)])
  grey = np.repeat(np.arange(256)[:, None], 3, axis=1)
  return np.concatenate([colours, corners, grey]) / 255.0


def test_rgb_to_lab_matches_skimage(cube):
  got = np.asarray(jax.jit(color.rgb_to_lab)(jnp.asarray(cube, jnp.float32)))
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, skcolor.rgb2lab(cube), rtol=0, atol=1e-3)


def test_lab_to_rgb_matches_skimage(cube):
  lab = skcolor.rgb2lab(cube)
  got = np.asarray(jax.jit(color.lab_to_rgb)(jnp.asarray(lab, jnp.float32)))
  np.testing.assert_allclose(got, skcolor.lab2rgb(lab), rtol=0, atol=1e-4)


def test_round_trip_within_half_a_level(cube):
  x = jnp.asarray(cube, jnp.float32)
  back = np.asarray(jax.jit(lambda v: color.lab_to_rgb(color.rgb_to_lab(v)))(x))
  assert np.abs(back - cube).max() <= 0.5 / 255


def test_numpy_namespace_gives_the_same_lab(cube):
  got = color.rgb_to_lab(cube[:10_000].astype(np.float32), xp=np)
  np.testing.assert_allclose(got, skcolor.rgb2lab(cube[:10_000]), rtol=0, atol=1e-3)


def test_yuv_matches_skimage(cube):
  sample = cube[::97]
  yuv = np.asarray(color.rgb_to_yuv(jnp.asarray(sample, jnp.float32)))
  np.testing.assert_allclose(yuv, skcolor.rgb2yuv(sample), atol=1e-5)
  back = np.asarray(color.yuv_to_rgb(jnp.asarray(skcolor.rgb2yuv(sample), jnp.float32)))
  np.testing.assert_allclose(back, skcolor.yuv2rgb(skcolor.rgb2yuv(sample)), atol=1e-5)


def test_gray_has_the_lightness_of_the_colour(cube):
  sample = cube[::101]
  gray = np.asarray(color.rgb_to_gray(jnp.asarray(sample, jnp.float32)))
  assert gray.shape == sample.shape[:-1] + (1,)
  lab_of_gray = skcolor.rgb2lab(np.repeat(gray.astype(np.float64), 3, axis=-1))
  lab = skcolor.rgb2lab(sample)
  np.testing.assert_allclose(lab_of_gray[..., 0], lab[..., 0], atol=2e-3)
  # Neutral sRGB is not exactly achromatic in skimage's Lab (its matrix rows sum to a white
  # 1.5e-5 off D65): |ab| < 0.005 for any grey.
  np.testing.assert_allclose(lab_of_gray[..., 1:], 0, atol=5e-3)


def test_gradients_are_finite_everywhere():
  rgb = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.04045, 0.5, 1.0], [1e-7, 0.2, 0.9]])
  grad = jax.grad(lambda x: color.rgb_to_lab(x).sum())(rgb)
  assert np.isfinite(np.asarray(grad)).all()
  lab = jnp.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [50.0, 300.0, -300.0], [1.0, -90, 90]])
  grad = jax.grad(lambda x: color.join_l_ab(x[..., :1], x[..., 1:]).sum())(lab)
  assert np.isfinite(np.asarray(grad)).all()


def test_out_of_gamut_is_clipped_not_nan():
  lab = jnp.array([[50.0, 1e4, -1e4], [-20.0, 0.0, 0.0], [150.0, 80.0, 80.0], [0.0, -500, 500]])
  rgb = np.asarray(color.lab_to_rgb(lab))
  assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1


def test_vmap_and_jit_agree_with_the_plain_call():
  x = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 8, 8, 3)), jnp.float32)
  plain = color.rgb_to_lab(x)
  np.testing.assert_allclose(jax.vmap(color.rgb_to_lab)(x), plain, atol=1e-5)
  np.testing.assert_allclose(jax.jit(color.rgb_to_lab)(x), plain, atol=1e-5)


def test_model_ranges_round_trip():
  lab = color.rgb_to_lab(jnp.asarray(np.random.default_rng(2).uniform(size=(64, 3)), jnp.float32))
  L, ab = color.split_lab(lab)
  assert float(jnp.abs(color.normalize_l(L)).max()) <= 1.0
  assert float(jnp.abs(color.normalize_ab(ab)).max()) <= 1.0
  np.testing.assert_allclose(color.denormalize_l(color.normalize_l(L)), L, atol=1e-4)
  np.testing.assert_allclose(color.denormalize_ab(color.normalize_ab(ab)), ab, atol=1e-4)
