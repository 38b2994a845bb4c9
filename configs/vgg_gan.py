"""The VGG16-GAN: VGG16-encoder generator and VGG16 discriminator, -log D(G(x)) + lambda·L1.

  colorjax train --config=configs/vgg_gan.py --workdir=runs/vgg_gan \
      --config.model.vgg_weights=PATH/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
  colorjax train --config=configs/vgg_gan.py --workdir=runs/vgg_gan_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=64 \
      --config.num_steps=100000 --config.compute_dtype=bfloat16 \
      --config.model.vgg_weights=PATH/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5   # at scale
  colorjax train --config=configs/vgg_gan.py:demo --workdir=runs/vgg_gan_demo   # CPU
  python launch/sweep.py --config=configs/vgg_gan.py:demo --workdir=runs/sweep \
      --grid=optim.lr=2e-4,2e-3 --grid=optim.b1=0.05,0.5,0.9                # the study's grid

The generator's VGG16 convs start from Keras's ImageNet weights when ``model.vgg_weights`` (or
the Keras cache) has them, otherwise from random weights. Adam lr 2e-4, beta1 0.5; the study
swept lr in {2e-4, 2e-3} and beta1 in {0.05, 0.5, 0.9}. ``demo`` narrows both networks to a
quarter of VGG16's widths at 64², sized for a CPU.
"""
from configs import cgan, default


def get_config(variant=''):
  if variant not in ('', 'demo'):
    raise ValueError(f"configs/vgg_gan.py:{variant} is not a variant; use 'demo' or none.")
  config = cgan.gan_config('paired_gan', default.model('vgg', 'vgg16'))
  config.image_size = 256
  config.batch_size = 8
  config.num_steps = 20000
  config.gan.epsilon = 1e-8            # the study's -log(D + eps) form
  config.gan.discriminator = 'vgg'
  config.eval_every = config.checkpoint_every = 1000
  if variant == 'demo':
    config.image_size = 64
    config.batch_size = 8
    config.num_steps = 300
    config.model.features = (16, 32, 64, 128, 128)
    config.gan.d_features = 16
    config.gan.d_head = (128, 64)
    config.log_every = 50
    config.eval_every = config.checkpoint_every = 150
    config.data.eval_fraction = 0.25
  return config
