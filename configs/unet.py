"""The portrait U-Net: regression of ab from L at 128², MAE first, then SSIM.

  python -m colorjax.main --config=configs/unet.py --workdir=runs/unet
  python -m colorjax.main --config=configs/unet.py --workdir=runs/unet_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=256 \
      --config.num_steps=100000 --config.compute_dtype=bfloat16   # at scale
  python -m colorjax.main --config=configs/unet.py:demo --workdir=runs/demo   # CPU, minutes

Trains on the bundled sample photos as is; use --config.data.source=tfds:places365_small (or a
folder of photos) for a real experiment, and --config.model.preset=pix2pix with
--config.image_size=256 for the pix2pix U-Net-256. The ``demo`` variant is the same network at
a quarter of the width on 64² crops, sized for a few minutes on two CPU cores (``make demo``).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import default  # noqa: E402


def get_config(variant=''):
  config = default.get_config()
  config.image_size = 128
  config.batch_size = 16
  config.num_steps = 3000
  config.model.preset = 'portrait'
  config.optim.lr = 1e-3
  config.optim.schedule = 'cosine'
  config.optim.warmup_steps = 100
  config.loss.weights = {'l1': 1.0}
  config.loss.switch_weights = {'ssim': 1.0}
  config.loss.switch_step = 2000
  config.data.scale_range = (1.0, 2.0)
  if variant == 'demo':
    config.image_size = 64
    config.batch_size = 8
    config.model.features = (16, 32, 64, 128, 128)
    config.num_steps = 1000
    config.loss.switch_step = 750
    config.log_every = 100
    config.eval_every = 250
    config.checkpoint_every = 250
    config.data.eval_fraction = 0.25
  elif variant:
    raise ValueError(f"configs/unet.py:{variant} is not a variant; use 'demo' or none.")
  return config
