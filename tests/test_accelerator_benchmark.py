"""benchmarks/accelerator.py --smoke: the whole accelerator benchmark at tiny sizes on the CPU,
as CI runs it (no TensorFlow, clu or Keras imported; PyTorch rows only where torch is)."""
import json
import os
import subprocess
import sys

from benchmarks import accelerator
from conftest import ROOT


def test_the_accelerator_benchmark_runs_every_family_and_every_loss_falls(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'benchmarks.accelerator', '--smoke',
                           f'--out={tmp_path}'], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((tmp_path / 'accelerator.json').read_text())
  assert report['environment']['imported'] == []
  rows = {(r['workload'], r['compute_dtype']): r for r in report['rows']}
  assert set(rows) == {(w, d) for w in accelerator.WORKLOADS for d in ('float32', 'bfloat16')}
  for (workload, dtype), row in rows.items():
    assert 'error' not in row, row
    assert row['step_s_p90'] >= row['step_s_median'] > 0 and row['compile_s'] > 0
    assert row['flops_per_image'] == rows[workload, 'float32']['flops_per_image'] > 0
    assert 0 < row['measured_peak_share'] and row['published_peak_share'] is None   # a CPU
    if dtype == 'bfloat16':
      assert row['loss_falls'] and row['loss_last'] < row['loss_first'], row
  table = (tmp_path / 'accelerator.md').read_text()
  assert table == result.stdout
  assert len(table.split('\n\n')[1].splitlines()) == 2 + len(rows)   # header, rule, rows
  assert 'PyTorch' in table
  assert report['film']['frames'] == 10 and report['film']['frames_per_s'] > 0   # PyAV: make
  assert 'Film (640x480, 10 frames' in table


def test_published_peaks_are_found_by_device_kind():
  assert accelerator.published_peak('NVIDIA H200') == 989.4e12
  assert accelerator.published_peak('TPU v5 lite') == 197e12
  assert accelerator.published_peak('cpu') is None
