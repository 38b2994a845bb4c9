"""The portrait U-Net: regression of ab from L at 128², MAE first, then SSIM.

  colorjax train --config=configs/unet.py --workdir=runs/unet
  colorjax train --config=configs/unet.py --workdir=runs/unet_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=256 \
      --config.num_steps=100000 --config.compute_dtype=bfloat16   # at scale
  colorjax train --config=configs/unet.py:demo --workdir=runs/demo   # CPU, minutes

Trains on the bundled sample photos as is; use --config.data.source=tfds:places365_small (or a
folder of photos) for a real experiment, and --config.model.preset=pix2pix with
--config.image_size=256 for the pix2pix U-Net-256. The ``demo`` variant is the same network at
a quarter of the width on 64² crops, sized for a few minutes on two CPU cores (``make demo``).
"""
from configs import default


def get_config(variant=''):
  config = default.get_config()
  portrait(config, variant)
  config.loss.weights = {'l1': 1.0}
  config.loss.switch_weights = {'ssim': 1.0}
  config.loss.switch_step = 750 if variant == 'demo' else 2000
  return config


def portrait(config, variant=''):
  """Sets the portrait U-Net's sizes, schedule and data on ``config`` (for ``demo``: a narrower
  U-Net on 64² crops); configs/classify.py shares them."""
  if variant not in ('', 'demo'):
    raise ValueError(f"configs/unet.py:{variant} is not a variant; use 'demo' or none.")
  config.image_size = 128
  config.batch_size = 16
  config.num_steps = 3000
  config.optim.lr = 1e-3
  config.optim.schedule = 'cosine'
  config.optim.warmup_steps = 100
  config.data.scale_range = (1.0, 2.0)
  if variant == 'demo':
    config.image_size = 64
    config.batch_size = 8
    config.model.features = (16, 32, 64, 128, 128)
    config.num_steps = 1000
    config.log_every = 100
    config.eval_every = 250
    config.checkpoint_every = 250
    config.data.eval_fraction = 0.25
