"""Colorization as classification over ab bins (Zhang et al.) with the portrait U-Net backbone.

  colorjax prior --config=configs/classify.py --output=runs/classify/prior.npy
  python -m colorjax.main --config=configs/classify.py --workdir=runs/classify \
      --config.classify.prior=runs/classify/prior.npy
  python -m colorjax.main --config=configs/classify.py --workdir=runs/classify_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=256 \
      --config.num_steps=100000 --config.compute_dtype=bfloat16 \
      --config.classify.prior=runs/classify_imagenet.npy   # at scale, after:
  colorjax prior --config=configs/classify.py --config.data.source=tfds:imagenet2012 \
      --output=runs/classify_imagenet.npy
  python -m colorjax.main --config=configs/classify.py:demo --workdir=runs/classify_demo   # CPU

The same network, data and schedule as configs/unet.py (its ``demo`` variant for ``demo``), with
a head of logits over the in-gamut ab bins: the regression and classification runs differ only
in the task. Without ``classify.prior`` the class rebalancing uses a uniform prior (with a
warning). ``fusion`` uses the global+local fusion CNN as the backbone instead.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import unet  # noqa: E402


def get_config(variant=''):
  if variant not in ('', 'demo', 'fusion'):
    raise ValueError(f"configs/classify.py:{variant} is not a variant; use 'demo', 'fusion' or "
                     'none.')
  config = unet.get_config('demo' if variant == 'demo' else '')
  config.task = 'classification'
  if variant == 'fusion':
    config.model.name = 'fusion'
    config.model.preset = 'global_local'
  return config
