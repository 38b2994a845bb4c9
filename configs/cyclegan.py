"""CycleGAN colorization from unpaired gray and colour images (ResNet-9 generators, PatchGANs).

  colorjax train --config=configs/cyclegan.py --workdir=runs/cyclegan
  colorjax train --config=configs/cyclegan.py --workdir=runs/cyclegan_places \
      --config.data.source=tfds:places365_small --config.batch_size=16 \
      --config.num_steps=200000 --config.compute_dtype=bfloat16   # at scale
  colorjax train --config=configs/cyclegan.py:demo --workdir=runs/cyclegan_demo  # CPU

Domain A is gray images and domain B colour images, drawn from the two halves of the data
source in independent orders (``data.pairing='unpaired'``). LSGAN, cycle lambda 10, identity
0.5, image pools of 50, Adam lr 2e-4 beta1 0.5, constant lr for the first half then linear
decay to zero. ``demo`` is 6 narrow residual blocks at 64², sized for a CPU.
"""
from configs import cgan, default


def get_config(variant=''):
  if variant not in ('', 'demo'):
    raise ValueError(f"configs/cyclegan.py:{variant} is not a variant; use 'demo' or none.")
  config = cgan.gan_config('cyclegan', default.model('resnet', 'resnet_9blocks'))
  config.image_size = 256
  config.batch_size = 1
  config.num_steps = 200000
  config.optim.schedule = 'constant_then_linear'
  config.optim.decay_start = 0.5
  config.gan.objective = 'lsgan'
  config.gan.d_norm = 'instance'
  config.data.pairing = 'unpaired'
  config.data.scale_range = (1.0, 1.12)   # resize to 286, crop 256
  config.eval_every = config.checkpoint_every = 5000
  if variant == 'demo':
    config.image_size = 64
    config.batch_size = 4
    config.num_steps = 400
    config.model.preset = 'resnet_6blocks'
    config.model.width = 16
    config.gan.d_features = 16
    config.log_every = 50
    config.eval_every = config.checkpoint_every = 200
    config.data.eval_fraction = 0.25
  return config
