"""The fusion CNN: a local encoder on L fused with VGG16's global features, regressing ab.

  colorjax train --config=configs/fusion.py --workdir=runs/fusion
  colorjax train --config=configs/fusion.py --workdir=runs/fusion_imagenet \
      --config.data.source=tfds:imagenet2012 --config.batch_size=256 \
      --config.num_steps=100000 --config.compute_dtype=bfloat16   # at scale
  colorjax train --config=configs/fusion.py:global_local --workdir=runs/global_local \
      --config.model.vgg_weights=PATH/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
  colorjax train --config=configs/fusion.py:demo --workdir=runs/fusion_demo   # CPU

The default is Deep Koalarization's encoder-fusion-decoder with VGG16's pooled block5 as the
global embedding, MSE on ab; ``global_local`` is the global+local network (3-layer local net,
two 3x3 convs of 64 after the fusion); ``demo`` is global_local on 64² crops, sized for a CPU.
VGG16 is frozen (``--config.model.vgg_trainable=True`` trains it too). Its Keras weights come
from ``model.vgg_weights`` or, when that is empty, the Keras cache (~/.keras/models); without
them it starts from random weights, with a warning.
"""
from configs import default


def get_config(variant=''):
  if variant not in ('', 'global_local', 'demo'):
    raise ValueError(f"configs/fusion.py:{variant} is not a variant; use 'global_local', 'demo' "
                     'or none.')
  config = default.get_config()
  config.image_size = 128
  config.batch_size = 16
  config.num_steps = 3000
  config.model = default.model('fusion', 'koalarization' if variant == '' else 'global_local')
  config.optim.lr = 1e-3
  config.optim.schedule = 'cosine'
  config.optim.warmup_steps = 100
  config.loss.weights = {'l2': 1.0}
  config.data.scale_range = (1.0, 2.0)
  if variant == 'demo':
    config.image_size = 64
    config.batch_size = 8
    config.num_steps = 1000
    config.log_every = 100
    config.eval_every = config.checkpoint_every = 250
    config.data.eval_fraction = 0.25
  return config
