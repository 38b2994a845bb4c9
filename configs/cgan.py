"""Conditional GAN (pix2pix): U-Net-256 generator + 70x70 PatchGAN on (L, ab), GAN + 100·L1.

  python -m colorjax.main --config=configs/cgan.py --workdir=runs/cgan
  python -m colorjax.main --config=configs/cgan.py --workdir=runs/cgan_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=64 \
      --config.num_steps=200000 --config.compute_dtype=bfloat16   # at scale
  python -m colorjax.main --config=configs/cgan.py --workdir=runs/cgan_ft \
      --config.init_from=runs/unet --config.model.preset=portrait --config.image_size=128
  python -m colorjax.main --config=configs/cgan.py:demo --workdir=runs/cgan_demo   # CPU

Runs as is on the bundled sample photos; use --config.data.source=tfds:places365_small for the
real experiment. ``init_from`` warm-starts the generator from a regression run of the same
network (pre-train with L1, then fine-tune adversarially); the discriminator starts fresh.
``demo`` is a narrow U-Net and PatchGAN on 64² crops, sized for a CPU.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import default  # noqa: E402


def get_config(variant=''):
  if variant not in ('', 'demo'):
    raise ValueError(f"configs/cgan.py:{variant} is not a variant; use 'demo' or none.")
  config = default.get_config()
  config.task = 'paired_gan'
  config.image_size = 256
  config.batch_size = 8
  config.num_steps = 20000
  config.model.preset = 'pix2pix'
  config.optim.lr = 2e-4
  config.optim.b1 = 0.5
  config.gan.objective = 'vanilla'
  config.gan.l1_weight = 100.0
  config.gan.discriminator = 'patchgan'
  config.gan.d_layers = 3
  config.data.scale_range = (1.0, 1.12)   # pix2pix's jitter: resize to 286, crop 256
  config.eval_every = config.checkpoint_every = 1000
  if variant == 'demo':
    config.image_size = 64
    config.batch_size = 8
    config.num_steps = 600
    config.model.preset = 'portrait'
    config.model.features = (16, 32, 64, 128, 128)
    config.gan.d_features = 16
    config.log_every = 50
    config.eval_every = config.checkpoint_every = 200
    config.data.eval_fraction = 0.25
  return config
