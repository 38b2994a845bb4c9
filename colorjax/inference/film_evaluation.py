"""How steady and how right a run's colour is on colour films (``colorjax evaluate --video``).

Each film is colorized twice, frame by frame (``--temporal=none``) and smoothed (``smooth``),
from its L alone; each route's flicker (``Report.flicker``) is set against the film's own, and
its mean ab error against the film's colours. Written as RUN/eval/step_N-video.json and .md.
"""
import json
import os
import tempfile

from colorjax.core import files
from colorjax.data.video import VideoError
from colorjax.inference import temporal


def measure(colorizer, films, step, run):
  """{'run', 'step', 'films': [...], 'failed': [...]} for ``films`` (paths)."""
  report = {'run': run, 'step': step, 'resolution': colorizer.resolution, 'films': [],
            'failed': []}
  with tempfile.TemporaryDirectory() as folder:
    for path in films:
      row = {'film': path}
      try:
        for method in temporal.METHODS:
          result = colorizer.colorize_video(path, os.path.join(folder, f'{method}.mkv'),
                                            temporal=method, codec='ffv1')
          os.remove(os.path.join(folder, f'{method}.mkv'))
          if result.original_flicker is None:
            raise VideoError(f'{path} is black and white: there is no colour to measure '
                             'against.')
          row.update(frames=result.frames, cuts=result.cuts,
                     original_flicker=result.original_flicker)
          row[method] = {'flicker': result.flicker, 'ab_error': result.ab_error,
                         'flicker_ratio': result.flicker / result.original_flicker
                         if result.original_flicker else float('inf')}
      except VideoError as e:
        report['failed'].append({'film': path, 'reason': str(e)})
        continue
      report['films'].append(row)
  return report


def markdown(report):
  lines = [f"Run `{report['run']}` at step {report['step']}, colorized at "
           f"{report['resolution']}², on {len(report['films'])} colour film(s). Flicker: mean "
           '|Δab| between consecutive frames where L did not change; ratio: against the '
           "film's own (1.0 = as steady as the film).", '',
           '| film | frames | cuts | flicker of the film | none: flicker | ratio | ab error | '
           'smooth: flicker | ratio | ab error |', '|---|' + '---:|' * 9]
  for row in report['films']:
    cells = [os.path.basename(row['film']), str(row['frames']), str(row['cuts']),
             f"{row['original_flicker']:.3f}"]
    for method in temporal.METHODS:
      cells += [f"{row[method]['flicker']:.3f}", f"{row[method]['flicker_ratio']:.2f}×",
                f"{row[method]['ab_error']:.2f}"]
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines += [f"\nNot measured: {f['reason']}" for f in report['failed']]
  return '\n'.join(lines) + '\n'


def write(report, folder):
  """``folder``/step_N-video.json and .md, each whole or not at all; returns the JSON path."""
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, f"step_{report['step']}-video")
  files.write_whole(path + '.json', json.dumps(report, indent=2))
  files.write_whole(path + '.md', markdown(report))
  return path + '.json'
