"""The step benchmark: synthetic device batches without TensorFlow, or the real input pipeline;
sane figures; its config fields checked before anything compiles."""
import json
import os
import re
import subprocess
import sys

import pytest

from colorjax import benchmark, validation
from conftest import ROOT

SCRIPT = '''
import json, sys
sys.path.insert(0, 'tests')
from conftest import load_config
from colorjax import benchmark
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
    ('input', 'tfrecord', "'synthetic', 'pipeline'"), ('steps', 0, '[1, inf]'),
    ('warmup', -1, '[0, inf]')])
def test_a_bad_benchmark_field_is_one_sentence(config, field, value, allowed):
  config.benchmark[field] = value
  pattern = rf'config\.benchmark\.{field}=.*{re.escape(allowed)}'
  with pytest.raises(validation.ConfigError, match=pattern):
    benchmark.validate(config)
