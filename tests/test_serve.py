"""colorjax serve on a run trained here: in a real browser (Debian's Chromium, driven by
Playwright), and from eight HTTP clients at once (gradio_client), with good and bad uploads.

COLORJAX_SCREENSHOT=docs/serve_page.png pytest tests/test_serve.py -k browser refreshes the
README's screenshot.
"""
import concurrent.futures
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from skimage import color as skcolor

from conftest import ROOT, colour_image, run_cli, write_image_mix

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def start_server(temporary, *args):
  """``colorjax serve ARGS`` in its own process, once it prints its address: (the process,
  its URL, that line)."""
  port = free_port()
  process = subprocess.Popen(
      [sys.executable, '-m', 'colorjax.cli', 'serve', *map(str, args), f'--port={port}'],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env={**os.environ, 'GRADIO_TEMP_DIR': str(temporary), 'TF_CPP_MIN_LOG_LEVEL': '2'})
  lines, deadline = [], time.monotonic() + 240
  while time.monotonic() < deadline:
    line = process.stdout.readline()
    lines.append(line)
    if line.startswith('Serving on') or process.poll() is not None:
      break
  assert lines[-1].startswith('Serving on'), ''.join(lines)[-3000:]
  return process, f'http://127.0.0.1:{port}', lines[-1]


@pytest.fixture(scope='module')
def server(trained_run, tmp_path_factory):
  """``colorjax serve --workdir=RUN``: (its URL, its first output line, Gradio's folder)."""
  temporary = tmp_path_factory.mktemp('gradio')
  process, url, line = start_server(temporary, f'--workdir={trained_run}', '--max_upload_mb=5')
  yield url, line, temporary
  process.terminate()
  process.wait(timeout=30)


def L_of(rgb):
  return skcolor.rgb2lab(rgb / 255.0)[..., 0]


def photo_file(folder, seed=7, size=(45, 70)):
  path = folder / f'photo_{seed}.png'
  Image.fromarray(colour_image(seed, size=size)).save(path)
  return path


def test_the_page_in_a_browser_colorizes_a_photo_at_full_resolution(server, trained_run,
                                                                    tmp_path):
  if not CHROMIUM:
    pytest.skip('needs Chromium (.ci/run installs Debian\'s chromium)')
  from playwright.sync_api import sync_playwright
  url, _, _ = server
  photo = photo_file(tmp_path)
  (tmp_path / 'notes.txt').write_text('not a photo')
  workdir_before = sorted(p.relative_to(trained_run) for p in trained_run.rglob('*'))
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
    page = browser.new_page(viewport={'width': 1280, 'height': 1000})
    elsewhere = []

    def only_this_server(route):
      if route.request.url.startswith(url) or route.request.url.startswith('data:'):
        route.continue_()
      else:   # the page must load nothing from other hosts
        elsewhere.append(route.request.url)
        route.abort()

    page.route('**/*', only_this_server)
    page.goto(url)
    page.set_input_files('input[type=file]', [str(photo), str(tmp_path / 'notes.txt')])
    page.get_by_role('button', name='Colorize').click()
    result = page.locator('img[src*=".png"]').first
    result.wait_for(timeout=60_000)
    page.get_by_text('not colorized').wait_for(timeout=10_000)
    png = page.request.get(result.get_attribute('src')).body()
    page.screenshot(path=str(tmp_path / 'page.png'), full_page=True)
    if os.environ.get('COLORJAX_SCREENSHOT'):
      shutil.copy(tmp_path / 'page.png', ROOT / os.environ['COLORJAX_SCREENSHOT'])
    browser.close()
  assert elsewhere == []
  colorized = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
  original = colour_image(7, size=(45, 70))
  assert colorized.shape == original.shape
  assert np.abs(L_of(colorized) - L_of(original)).mean() < 1
  assert sorted(p.relative_to(trained_run) for p in trained_run.rglob('*')) == workdir_before


def test_eight_clients_at_once_get_what_colorize_writes(server, trained_run, tmp_path):
  from gradio_client import Client, handle_file
  url, first_line, _ = server
  assert first_line.startswith('Serving on http://127.0.0.1:')   # this machine only
  photos = [photo_file(tmp_path, seed) for seed in range(8)]
  assert run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "cli"}',
                 *photos).returncode == 0

  def ask(path):
    _, gallery, _, table = Client(url, verbose=False).predict([handle_file(str(path))], 32,
                                                              api_name='/colorize')
    return np.asarray(Image.open(gallery[0]['image']).convert('RGB')), table

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(ask, photos))
  for path, (colorized, table) in zip(photos, answers):
    expected = np.asarray(Image.open(tmp_path / 'cli' / path.name).convert('RGB'))
    assert np.abs(colorized.astype(int) - expected).max() <= 1
    assert f'| {path.name} | ' in table


def test_bad_uploads_get_a_message_and_the_server_keeps_serving(server, tmp_path):
  from gradio_client import Client, handle_file
  url, _, _ = server
  good, bad = write_image_mix(tmp_path / 'mix')
  client = Client(url, verbose=False)
  files = [tmp_path / 'mix' / name for name in sorted(good | set(bad)) if name != 'unreadable.jpg']
  _, gallery, _, table = client.predict([handle_file(str(f)) for f in files], 32,
                                        api_name='/colorize')
  assert len(gallery) == len(good)
  for name in bad:
    if name != 'unreadable.jpg':
      assert f'| {name} | – | not colorized: ' in table
  assert 'too large' in table.split('| bomb.png |')[1].split('\n')[0]
  _, gallery, _, _ = client.predict([handle_file(str(photo_file(tmp_path)))], 32,
                                    api_name='/colorize')
  assert len(gallery) == 1   # still answering
  too_big = tmp_path / 'big.png'
  too_big.write_bytes(os.urandom(6 * 10 ** 6))
  with pytest.raises(Exception, match='(?i)too large|exceeds|maximum'):
    client.predict([handle_file(str(too_big))], 32, api_name='/colorize')
  for path in ('/etc/passwd', str(ROOT / 'pyproject.toml')):
    with pytest.raises(urllib.error.HTTPError):
      urllib.request.urlopen(f'{url}/gradio_api/file={path}', timeout=10)


def test_a_film_comes_back_colorized_with_its_sound(server, trained_run, tmp_path):
  from gradio_client import Client, handle_file
  from test_video import decoded, write_film
  url, _, _ = server
  write_film(tmp_path / 'reel.mp4', size=(32, 48), frames=10, cut=5)
  _, gallery, films, table = Client(url, verbose=False).predict(
      [handle_file(str(tmp_path / 'reel.mp4'))], 32, api_name='/colorize')
  assert gallery == [] and len(films) == 1
  frames, _, _, audio, _ = decoded(films[0])
  assert frames.shape == (10, 32, 48, 3) and audio == [('aac', 16000)]
  assert f'| reel.mp4 | {trained_run.name} | film: 10 frames, flicker ' in table


def test_an_exported_file_is_served_like_its_run(trained_run, tmp_path):
  """``serve --exported=FILE.onnx``: the page colorizes with the file alone, as the run does."""
  from gradio_client import Client, handle_file
  model = tmp_path / 'model.onnx'
  assert run_cli('export', f'--workdir={trained_run}', '--format=onnx',
                 f'--output={model}').returncode == 0
  photo = photo_file(tmp_path)
  assert run_cli('colorize', f'--workdir={trained_run}', f'--output={tmp_path / "cli"}',
                 photo).returncode == 0
  process, url, _ = start_server(tmp_path / 'gradio', f'--exported={model}')
  try:
    _, gallery, _, table = Client(url, verbose=False).predict([handle_file(str(photo))], None,
                                                              api_name='/colorize')
  finally:
    process.terminate()
    process.wait(timeout=30)
  colorized = np.asarray(Image.open(gallery[0]['image']).convert('RGB'))
  expected = np.asarray(Image.open(tmp_path / 'cli' / photo.name).convert('RGB'))
  assert np.abs(colorized.astype(int) - expected).max() <= 1
  assert f'| {photo.name} | model.onnx | colourfulness ' in table


def test_serve_refuses_bad_flags_in_one_sentence(trained_run):
  result = run_cli('serve')
  assert result.returncode == 2 and 'give --workdir=RUN and/or --exported=FILE' in result.stderr
  result = run_cli('serve', f'--workdir={trained_run}', '--port=0')
  assert result.returncode == 2 and '--port=0 is not allowed' in result.stderr
