"""XLA:TPU's figures for every family at the sizes users train, on any machine (no TPU).

  python -m benchmarks.tpu_compile --out=results/tpu                  # v5e and v6e, bf16 + f32
  python -m benchmarks.tpu_compile --out=DIR --topologies=v4:2x2x1,v5p:2x2x1 --dtypes=bfloat16

Each row is one ``colorjax compile`` (a process of its own, so that one program crashing
libtpu's compiler leaves the others' rows) of a family's config at the throughput batch its
docstring recommends (``FAMILIES``), on a topology of four chips. Writes tpu_compile.md (the
table in docs/performance.md) and every row's JSON report to ``--out``. Compiler estimates, not
measured runs.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

# name: (config file, overrides); the batch is the one the config's docstring gives its at-scale
# command (tests/test_tpu_compile.py checks they agree).
FAMILIES = {
    'unet': ('configs/unet.py', {'batch_size': 256}),
    'unet256': ('configs/unet.py', {'model.preset': 'pix2pix', 'image_size': 256,
                                    'batch_size': 256}),
    'fusion': ('configs/fusion.py', {'batch_size': 256}),
    'classify': ('configs/classify.py', {'batch_size': 256}),
    'cgan': ('configs/cgan.py', {'batch_size': 64}),
    'vgg_gan': ('configs/vgg_gan.py', {'batch_size': 64}),
    'cyclegan': ('configs/cyclegan.py', {'batch_size': 16}),
}


def csv(text):
  return [item for item in text.split(',') if item]


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', required=True, help='folder for tpu_compile.md and the reports')
  parser.add_argument('--families', type=csv, default=list(FAMILIES))
  parser.add_argument('--topologies', type=csv, default=['v5e:2x2', 'v6e:2x2'])
  parser.add_argument('--dtypes', type=csv, default=['bfloat16', 'float32'])
  parser.add_argument('--timeout', type=float, default=1800, help='seconds per compile')
  return parser.parse_args(argv)


def compile_row(family, topology, dtype, out, timeout):
  """One ``colorjax compile`` in its own process: its JSON report, or {'error': ...}."""
  config, overrides = FAMILIES[family]
  path = out / f"{family}-{topology.replace(':', '_')}-{dtype}.json"
  path.unlink(missing_ok=True)
  command = [sys.executable, '-m', 'colorjax.cli', 'compile', f'--config={config}',
             f'--topology={topology}', f'--config.compute_dtype={dtype}', f'--output={path}']
  command += [f'--config.{k}={v}' for k, v in overrides.items()]
  try:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired:
    return {'error': f'no report within {timeout:.0f} s'}
  if done.returncode or not path.exists():
    lines = (done.stderr or done.stdout).strip().splitlines() or ['']
    return {'error': f'exit {done.returncode}: {lines[-1][:200]}'}
  return json.loads(path.read_text())


def markdown(rows):
  lines = ['| family | topology | dtype | batch | HBM/device GiB (fits) | GFLOP/img compiled '
           '(model) | MB/img | FLOP/byte | bound | roofline ms | img/s/chip | % bf16 peak '
           '| compile s |', '|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|']
  for family, topology, dtype, r in rows:
    if 'error' in r or 'total_bytes' not in r:
      reason = r.get('error', 'does not fit')
      lines.append(f'| {family} | {topology} | {dtype} | {r.get("batch_size", "")} '
                   f'| {reason} |')
      continue
    lines.append(
        f"| {family} | {topology} | {dtype} | {r['batch_size']} "
        f"| {r['total_bytes'] / 2**30:.2f} ({'yes' if r['fits'] else 'no'}) "
        f"| {r['xla_flops_per_image'] / 1e9:.1f} ({r['model_flops_per_image'] / 1e9:.1f}) "
        f"| {r['bytes_per_image'] / 1e6:.0f} | {r['intensity']:.0f} | {r['bound']} "
        f"| {1e3 * r['roofline_step_s']:.1f} | {r['images_per_s_per_chip']:,.0f} "
        f"| {100 * r['roofline_utilisation']:.1f} | {r['compile_s']:.0f} |")
  return '\n'.join(lines) + '\n'


def main(argv=None):
  args = parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  rows = []
  for family in args.families:
    for topology in args.topologies:
      for dtype in args.dtypes:
        start = time.perf_counter()
        report = compile_row(family, topology, dtype, out, args.timeout)
        rows.append((family, topology, dtype, report))
        print(f'{family} {topology} {dtype}: {report.get("error", "done")} '
              f'({time.perf_counter() - start:.0f} s)', file=sys.stderr, flush=True)
        (out / 'tpu_compile.md').write_text(markdown(rows))
  print(markdown(rows), end='')
  return 1 if any('error' in r for *_, r in rows) else 0


if __name__ == '__main__':
  sys.exit(main())
