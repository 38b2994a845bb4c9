"""Runs a grid of config overrides, one training run per point, and tabulates the results.

  python launch/sweep.py --config=configs/vgg_gan.py:demo --workdir=runs/sweep \\
      --grid=optim.lr=2e-4,2e-3 --grid=optim.b1=0.05,0.5,0.9 --set=num_steps=300

runs the 6 points one after another (each in WORKDIR/lr-2e-4_b1-0.05 and so on, each resuming
if it was interrupted), then writes WORKDIR/sweep.csv and WORKDIR/sweep.md: per point its
final D and G losses (training metrics at the last logged step; ``loss`` for non-GAN tasks),
the last eval's mean absolute ab error (MAE, Lab units) and PSNR. With ``--print_commands`` it
prints one command line per point instead (for a cluster scheduler: a SLURM array, xargs, or
launch/slurm.sbatch), and ``--collect`` only tabulates runs that already ran.
"""
import argparse
import csv
import itertools
import json
import os
import shlex
import subprocess
import sys

COLUMNS = (('d_loss', 'train/d_loss', 'D loss'), ('g_loss', 'train/g_loss', 'G loss'),
           ('loss', 'train/loss', 'loss'), ('mae', 'eval/ab_error', 'eval MAE (ab)'),
           ('psnr', 'eval/psnr', 'eval PSNR'))


def parse_assignment(text, flag):
  field, sep, values = text.partition('=')
  if not sep or not field or not values:
    raise SystemExit(f'sweep: {flag}={text!r} is not FIELD=VALUE[,VALUE...].')
  return field, values.split(',')


def expand(grid):
  """[(field, [value, ...]), ...] -> one {field: value} per point (the last field varies
  fastest)."""
  fields = [field for field, _ in grid]
  return [dict(zip(fields, values)) for values in itertools.product(*(v for _, v in grid))]


def run_name(point):
  """'lr-2e-4_b1-0.05' for {'optim.lr': '2e-4', 'optim.b1': '0.05'}."""
  return '_'.join(f"{field.rsplit('.', 1)[-1]}-{value}" for field, value in point.items())


def command(config, workdir, point, sets, python=sys.executable):
  overrides = [f'--config.{field}={value}' for field, value in {**sets, **point}.items()]
  return [python, '-m', 'colorjax.main', f'--config={config}', f'--workdir={workdir}',
          *overrides]


def final_metrics(workdir):
  """{column: value} from a run's metrics.jsonl: each metric's last logged value."""
  path = os.path.join(workdir, 'metrics.jsonl')
  last = {}
  if os.path.isfile(path):
    with open(path) as f:
      for line in f:
        record = json.loads(line)
        last.update({k: (record['step'], v) for k, v in record.items() if k != 'step'})
  values = {name: last[key][1] for name, key, _ in COLUMNS if key in last}
  values['steps'] = max((step for step, _ in last.values()), default=0)
  return values


def tabulate(root, points, status):
  """Writes root/sweep.csv and root/sweep.md; returns the markdown."""
  fields = list(points[0]) if points else []
  rows = []
  for point in points:
    metrics = final_metrics(os.path.join(root, run_name(point)))
    rows.append({**point, **metrics, 'status': status.get(run_name(point)) or
                 ('ran' if metrics['steps'] else 'not run')})
  present = [c for c in COLUMNS if any(c[0] in row for row in rows)]
  header = fields + [name for name, _, _ in present] + ['steps', 'status']
  with open(os.path.join(root, 'sweep.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, header, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)
  titles = fields + [title for _, _, title in present] + ['steps', 'status']
  lines = ['| ' + ' | '.join(titles) + ' |', '|' + '---|' * len(titles)]
  for row in rows:
    cells = [row[f] for f in fields]
    cells += [f'{row[name]:.4g}' if name in row else '–' for name, _, _ in present]
    lines.append('| ' + ' | '.join(cells + [str(row['steps']), row['status']]) + ' |')
  table = '\n'.join(lines) + '\n'
  with open(os.path.join(root, 'sweep.md'), 'w') as f:
    f.write(table)
  return table


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', required=True, help='config file[:variant]')
  parser.add_argument('--workdir', required=True, help='folder of the runs and the tables')
  parser.add_argument('--grid', action='append', default=[],
                      help='FIELD=V1,V2,... (repeat; values without commas)')
  parser.add_argument('--set', action='append', default=[], help='FIELD=VALUE for every run')
  parser.add_argument('--print_commands', action='store_true', help='print, do not run')
  parser.add_argument('--collect', action='store_true', help='only tabulate existing runs')
  args = parser.parse_args(argv)
  grid = [parse_assignment(g, '--grid') for g in args.grid]
  sets = {field: ','.join(values)   # one value, commas and all: '(4, 8)'
          for field, values in (parse_assignment(s, '--set') for s in args.set)}
  points = expand(grid)
  root = os.path.abspath(args.workdir)
  if args.print_commands:
    for point in points:
      print(shlex.join(command(args.config, os.path.join(root, run_name(point)), point, sets)))
    return 0
  os.makedirs(root, exist_ok=True)
  status = {}
  for i, point in enumerate(points if not args.collect else (), 1):
    name = run_name(point)
    print(f'sweep: run {i} of {len(points)}: {name}', flush=True)
    with open(os.path.join(root, f'{name}.log'), 'w') as log:
      code = subprocess.call(command(args.config, os.path.join(root, name), point, sets),
                             stdout=log, stderr=subprocess.STDOUT)
    if code:
      status[name] = f'failed (exit {code}, see {name}.log)'
      print(f'sweep: {name} failed with exit code {code}; its log is {root}/{name}.log',
            flush=True)
  print(tabulate(root, points, status), end='')
  print(f'sweep: wrote {root}/sweep.csv and {root}/sweep.md')
  return 1 if status else 0


if __name__ == '__main__':
  sys.exit(main())
