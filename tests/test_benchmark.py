"""The step benchmark: synthetic device batches without TensorFlow, or the real input pipeline;
sane figures; its config fields checked before anything compiles."""
import json
import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from colorjax.core import validation
from colorjax.training import benchmark
from conftest import ROOT

SCRIPT = '''
import json, sys
sys.path.insert(0, 'tests')
from conftest import load_config
from colorjax.training import benchmark
config = load_config()
config.image_size, config.batch_size, config.model.features = 32, 4, (4, 8)
config.benchmark.steps, config.benchmark.warmup = 3, 1
result = benchmark.measure(config)
assert not any(m.startswith('tensorflow') for m in sys.modules), 'imported TensorFlow'
print(json.dumps(result))
'''


def test_benchmark_runs_without_tensorflow_and_reports_sane_figures():
  out = subprocess.run([sys.executable, '-c', SCRIPT], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['step_s_p90'] >= result['step_s_median'] > 0
  assert abs(result['images_per_s'] - 4 / result['step_s_median']) < 1e-6
  assert result['flops_per_step'] > 0 and 0 < result['utilisation'] < 2
  assert result['flops_per_image'] * 4 == result['flops_per_step']
  assert result['compile_s'] > 0 and result['steps'] == 3
  assert result['input'] == 'synthetic' and result['data_wait_share'] < 0.5


def test_end_to_end_benchmark_reads_the_sample_photos_and_reports_the_data_wait(config):
  config.model.features = (4, 8)
  config.benchmark.steps, config.benchmark.warmup, config.benchmark.input = 4, 1, 'pipeline'
  result = benchmark.measure(config)
  assert result['input'] == 'pipeline' and result['steps'] == 4
  assert result['step_s_median'] > result['data_wait_s_median'] > 0
  assert 0 < result['data_wait_share'] < 1
  assert 'data wait' in benchmark.table(result)


@pytest.mark.parametrize('field, value, allowed', [
    ('input', 'tfrecord', "'synthetic', 'pipeline'"), ('steps', 0, '[1, inf)'),
    ('warmup', -1, '[0, inf)')])
def test_a_bad_benchmark_field_is_one_sentence(config, field, value, allowed):
  config.benchmark[field] = value
  pattern = rf'config\.benchmark\.{field}=.*{re.escape(allowed)}'
  with pytest.raises(validation.ConfigError, match=pattern):
    benchmark.validate(config)


class _ConvNet(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.Conv(5, (3, 3))(x)                                        # 3 -> 5 at 8x6
    x = nn.Conv(4, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(x)   # 5 -> 4 to 4x3
    x = nn.ConvTranspose(6, (4, 4), strides=(2, 2), padding='SAME')(x)   # 4 -> 6 to 8x6
    return nn.Dense(7)(x.mean(axis=(1, 2)))                          # 6 -> 7


def test_model_flops_count_each_multiply_add_of_the_network_twice():
  """Forward: 2 x batch x (output pixels x taps x inputs x outputs) per conv (a transposed conv:
  its input pixels x taps), 2 x batch x 6 x 7 for the Dense layer; the gradients for the
  params and the input cost twice the forward again."""
  x = jax.ShapeDtypeStruct((2, 8, 6, 3), jnp.float32)
  model = _ConvNet()
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  forward = 2 * 2 * (8 * 6 * 9 * 3 * 5 + 4 * 3 * 16 * 5 * 4 + 4 * 3 * 16 * 4 * 6 + 6 * 7)
  export = lambda f: jax.export.export(jax.jit(f), platforms=('cuda',))(params, x)
  assert benchmark.stablehlo_flops(export(model.apply).mlir_module()) == forward
  gradients = jax.grad(lambda v, x: jnp.sum(jnp.sin(model.apply(v, x))), argnums=(0, 1))
  assert benchmark.stablehlo_flops(export(gradients).mlir_module()) == 3 * forward
