"""Colorization as classification over ab bins (Zhang et al.) with the portrait U-Net backbone.

  colorjax prior --config=configs/classify.py --output=runs/classify/prior.npy
  colorjax train --config=configs/classify.py --workdir=runs/classify \
      --config.classify.prior=runs/classify/prior.npy
  colorjax train --config=configs/classify.py --workdir=runs/classify_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=256 \
      --config.num_steps=100000 --config.compute_dtype=bfloat16 \
      --config.classify.prior=runs/classify_imagenet.npy   # at scale, after:
  colorjax prior --config=configs/classify.py --config.data.source=tfds:imagenet2012 \
      --output=runs/classify_imagenet.npy
  colorjax train --config=configs/classify.py:demo --workdir=runs/classify_demo   # CPU

The same network, data and schedule as configs/unet.py (its ``demo`` variant for ``demo``), with
a head of logits over the in-gamut ab bins: the regression and classification runs differ only
in the task. Without ``classify.prior`` the class rebalancing uses a uniform prior (with a
warning). ``fusion`` uses the global+local fusion CNN as the backbone instead.
"""
import ml_collections

from configs import default, unet


def get_config(variant=''):
  if variant not in ('', 'demo', 'fusion'):
    raise ValueError(f"configs/classify.py:{variant} is not a variant; use 'demo', 'fusion' or "
                     'none.')
  config = default.base()
  config.task = 'classification'
  unet.portrait(config, 'demo' if variant == 'demo' else '')
  if variant == 'fusion':
    config.model = default.model('fusion', 'global_local')
  config.classify = classify = ml_collections.ConfigDict()
  classify.prior = ''                # ab-bin prior from `colorjax prior` (.npy; '': uniform)
  classify.neighbours = 5            # soft encoding: nearest bins that share a pixel's target
  classify.sigma = 5.0               # soft encoding: Gaussian width (ab units)
  classify.prior_sigma = 5.0         # rebalancing: Gaussian smoothing of the prior (ab units)
  classify.uniform_mix = 0.5         # rebalancing: weight of the uniform distribution (lambda)
  classify.decode = 'annealed_mean'  # bin probabilities -> ab: 'annealed_mean', 'mean' or 'mode'
  classify.temperature = 0.38        # annealed mean: softmax temperature (1: the mean)
  return config
