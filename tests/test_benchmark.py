"""The step benchmark: synthetic device batches, no TensorFlow, sane figures."""
import json
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = '''
import json, sys
sys.path.insert(0, 'tests')
from conftest import load_config
from colorjax import benchmark
config = load_config()
config.image_size, config.batch_size, config.model.features = 32, 4, (4, 8)
result = benchmark.measure(config, steps=3, warmup=1)
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
