"""``colorjax serve`` under load on this machine: requests/sec and latency with 1 and with 8
clients at once, each request one photo, against the server's batching.

  python -m benchmarks.serve --workdir=runs/demo

Starts ``colorjax serve --workdir=RUN`` (its own process, warmed up before it prints its
address), then: one client sending ``--requests`` photos one after another, and eight clients
each sending ``--requests`` at once (gradio_client, threads). The photo is the bundled
astronaut.png (512x512) turned gray. Prints a Markdown table: requests/sec, median and 90th
percentile latency, and, for eight clients, the time eight requests would take one by one.
"""
import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image

from colorjax.data import sources


def start(workdir, port, batch_size):
  process = subprocess.Popen(
      [sys.executable, '-m', 'colorjax.cli', 'serve', f'--workdir={workdir}', f'--port={port}',
       f'--batch_size={batch_size}'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)
  for line in process.stdout:
    if line.startswith('Serving on'):
      return process
  raise RuntimeError('colorjax serve did not start')


def timed(client, photo):
  from gradio_client import handle_file  # noqa: PLC0415  (the serve extra)
  start = time.perf_counter()
  client.predict([handle_file(photo)], None, api_name='/colorize')
  return time.perf_counter() - start


def load(url, photo, clients, requests):
  """(requests/sec, latencies) with ``clients`` clients each sending ``requests``."""
  from gradio_client import Client  # noqa: PLC0415
  sessions = [Client(url, verbose=False) for _ in range(clients)]
  timed(sessions[0], photo)   # warm: the first request's file upload path
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    futures = [pool.submit(lambda c: [timed(c, photo) for _ in range(requests)], c)
               for c in sessions]
    latencies = [t for f in futures for t in f.result()]
  return clients * requests / (time.perf_counter() - start), latencies


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--requests', type=int, default=10, help='per client')
  parser.add_argument('--batch_size', type=int, default=8)
  args = parser.parse_args()
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  with tempfile.TemporaryDirectory() as folder:
    photo = os.path.join(folder, 'gray.png')
    Image.open(os.path.join(sources.samples_dir(), 'astronaut.png')).convert('L').save(photo)
    server = start(args.workdir, port, args.batch_size)
    try:
      rows = {n: load(f'http://127.0.0.1:{port}', photo, n, args.requests) for n in (1, 8)}
    finally:
      server.terminate()
  one_by_one = 8 * statistics.median(rows[1][1])
  print(f'colorjax serve --workdir={args.workdir} --batch_size={args.batch_size}, '
        f'{args.requests} requests per client, one 512x512 photo each\n')
  print('| clients | requests/s | median latency (s) | p90 latency (s) |\n|---:|---:|---:|---:|')
  for clients, (rate, latencies) in rows.items():
    p90 = statistics.quantiles(latencies, n=10)[-1]
    print(f'| {clients} | {rate:.2f} | {statistics.median(latencies):.3f} | {p90:.3f} |')
  print(f'\nEight requests one by one: {one_by_one:.2f} s; eight at once: '
        f'{statistics.median(rows[8][1]):.2f} s median.')


if __name__ == '__main__':
  main()
