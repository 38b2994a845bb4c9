"""Conditional GAN (pix2pix): U-Net-256 generator + 70x70 PatchGAN on (L, ab), GAN + 100·L1.

  colorjax train --config=configs/cgan.py --workdir=runs/cgan
  colorjax train --config=configs/cgan.py --workdir=runs/cgan_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=64 \
      --config.num_steps=200000 --config.compute_dtype=bfloat16   # at scale
  colorjax train --config=configs/cgan.py --workdir=runs/cgan_ft \
      --config.init_from=runs/unet --config.model.preset=portrait --config.image_size=128
  colorjax train --config=configs/cgan.py:demo --workdir=runs/cgan_demo   # CPU

Runs as is on the bundled sample photos; use --config.data.source=tfds:places365_small for the
real experiment. ``init_from`` warm-starts the generator from a regression run of the same
network (pre-train with L1, then fine-tune adversarially); the discriminator starts fresh.
``demo`` is a narrow U-Net and PatchGAN on 64² crops, sized for a CPU. ``gan_config`` is where
every GAN config (this one, configs/vgg_gan.py, configs/cyclegan.py) starts.
"""
import ml_collections

from configs import default


def get_config(variant=''):
  if variant not in ('', 'demo'):
    raise ValueError(f"configs/cgan.py:{variant} is not a variant; use 'demo' or none.")
  config = gan_config('paired_gan', default.model('unet', 'pix2pix'))
  config.image_size = 256
  config.batch_size = 8
  config.num_steps = 20000
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


def gan_config(task, model):
  """default.base() for GAN ``task`` ('paired_gan' or 'cyclegan') with generator ``model``
  (default.model's), pix2pix's Adam (lr 2e-4, beta1 0.5) and the ``gan`` fields it reads."""
  config = default.base()
  config.task = task
  config.model = model
  config.optim.lr = 2e-4
  config.optim.b1 = 0.5
  config.gan = gan = ml_collections.ConfigDict()
  gan.objective = 'vanilla'          # 'vanilla' (non-saturating, from logits), 'lsgan' or 'hinge'
  gan.epsilon = 0.0                  # vanilla: > 0 computes -log(D + epsilon) from probabilities
  gan.discriminator = 'patchgan'     # 'patchgan', or 'vgg' (the VGG16-GAN's; paired only)
  gan.d_features = 64                # D's first width (vgg: VGG16's widths scaled by this / 64)
  gan.d_layers = 3                   # PatchGAN stride-2 layers (3: 70x70 patches)
  gan.d_norm = 'batch'               # D's norm: 'batch', 'instance' or 'none'
  gan.d_head = (1024, 512)           # vgg: units of the Dense-norm-LeakyReLU-Dropout layers
  gan.d_dropout = 0.5                # vgg: dropout rate in the head
  if task == 'paired_gan':
    gan.l1_weight = 100.0            # generator loss = adversarial + l1_weight · L1(ab)
  else:
    gan.cycle_weight = 10.0          # weight of the cycle-consistency L1
    gan.identity_weight = 0.5        # identity L1 weight, times cycle_weight
    gan.pool_size = 50               # earlier fakes kept for the discriminators (0: off)
  return config
