"""Runs one command as N cooperating JAX processes on this machine (127.0.0.1).

  python launch/local.py --processes=2 --devices_per_process=2 -- \\
      python -m colorjax.main --config=configs/unet.py:demo --workdir=runs/two

Each process gets JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID (read by
colorjax.core.parallel.initialize) and, on CPU, ``devices_per_process`` host devices. The first
process to fail stops the others; the exit code is the first non-zero one. SIGTERM and SIGINT
are passed on to every process. Output lines are prefixed with the process index.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading


def free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def environment(index, processes, port, devices_per_process):
  env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
             JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(index))
  if devices_per_process:
    flags = env.get('XLA_FLAGS', '')
    env['XLA_FLAGS'] = f'{flags} --xla_force_host_platform_device_count={devices_per_process}'
  return env


def relay(stream, index, out):
  for line in stream:
    out.write(f'[{index}] {line}')
    out.flush()


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--processes', type=int, default=2)
  parser.add_argument('--devices_per_process', type=int, default=0,
                      help='CPU host devices per process (0: leave as is)')
  parser.add_argument('command', nargs=argparse.REMAINDER)
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ['--'] else args.command
  if not command:
    parser.error('give the command after --')
  port = free_port()
  children = [subprocess.Popen(command, env=environment(i, args.processes, port,
                                                         args.devices_per_process),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for i in range(args.processes)]
  relays = [threading.Thread(target=relay, args=(c.stdout, i, sys.stdout), daemon=True)
            for i, c in enumerate(children)]
  for thread in relays:
    thread.start()

  def forward(signum, frame):
    del frame
    for child in children:
      child.send_signal(signum)
  signal.signal(signal.SIGTERM, forward)
  signal.signal(signal.SIGINT, forward)
  code = 0
  remaining = list(children)
  while remaining:
    for child in list(remaining):
      try:
        returncode = child.wait(timeout=0.2)
      except subprocess.TimeoutExpired:
        continue
      remaining.remove(child)
      if returncode and not code:
        code = returncode
        for other in remaining:
          other.kill()
  for thread in relays:
    thread.join()
  return code


if __name__ == '__main__':
  sys.exit(main())
