"""``colorjax bench-data`` end to end: a folder of JPEGs and a real TFDS set of the same files."""
import json
import os
import subprocess
import sys

from colorjax.data import throughput as benchmark
from conftest import ROOT

SMALL = ['--sizes=48', '--batch_size=4', '--images=16', '--repeats=1']


def bench_data(*flags):
  result = subprocess.run([sys.executable, '-m', 'colorjax.cli', 'bench-data', *SMALL, *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  table = [line.split() for line in lines if line.startswith(('folder ', 'tfds:'))]
  return json.loads(lines[-1])['rows'], table


def test_bench_data_reports_both_sources_per_thread_count():
  rows, table = bench_data('--num_files=12', '--threads=1,2')
  assert [(r['source'].split(':')[0], r['threads']) for r in rows] == [
      ('folder', 1), ('folder', 2), ('tfds', 1), ('tfds', 2)]
  assert rows[2]['source'] == 'tfds:bench_jpegs'
  assert all(r['reference'] > 0 and r['pipeline'] > 0 and r['size'] == 48 for r in rows)
  assert [t[:3] for t in table] == [['folder', '48²', '1'], ['folder', '48²', '2'],
                                    ['tfds:bench_jpegs', '48²', '1'],
                                    ['tfds:bench_jpegs', '48²', '2']]
  assert table[0][-1] == '1.00x' and table[1][-1] != '1.00x'


def test_bench_data_reads_a_prepared_tfds_set(tmp_path):
  jpegs = tmp_path / 'jpegs'
  jpegs.mkdir()
  benchmark.make_jpegs(jpegs, 6, size=(80, 60))
  benchmark.BenchJpegs(folder=str(jpegs), data_dir=str(tmp_path / 'tfds')).download_and_prepare()
  rows, _ = bench_data('--tfds=bench_jpegs', f'--config.data.data_dir={tmp_path / "tfds"}',
                       '--threads=1')
  assert [(r['source'], r['threads']) for r in rows] == [('tfds:bench_jpegs', 1)]
