"""The base every colorjax experiment starts from: the portrait U-Net regressing ab, which runs
as is on the bundled sample photos.

  colorjax train --config=configs/default.py --workdir=runs/default
  colorjax preview --config=configs/default.py --output=runs/sheet.png

Override any field on the command line, e.g. ``--config.data.source=folder:~/photos``.
``base`` holds the fields every run reads and ``model`` a network's; a config holds only the
groups its task reads: ``loss`` (regression, here), ``classify`` (configs/classify.py) or
``gan`` (configs/cgan.py's ``gan_config``, which every GAN config starts from).
"""
import ml_collections
from ml_collections import config_dict


def get_config():
  config = base()
  config.loss = loss = ml_collections.ConfigDict()   # task 'regression'
  loss.weights = {'l1': 1.0}         # weighted sum of 'l1', 'l2' (on ab) and 'ssim' (on RGB)
  loss.switch_weights = {}           # weights used from switch_step on
  loss.switch_step = 0               # step at which the loss switches (0: never)
  return config


def base():
  """The fields every run reads, with the portrait U-Net as the network."""
  config = ml_collections.ConfigDict()
  config.seed = 0                    # seeds data order, augmentation and initialisation
  config.image_size = 128            # training crop side in pixels (square)
  config.batch_size = 16             # global batch, split evenly over processes and devices
  config.task = 'regression'         # training family: a module in colorjax/tasks
  config.num_steps = 2000            # training steps in all (a resumed run continues to it)
  config.compute_dtype = 'float32'   # 'float32' or 'bfloat16' for convolutions/activations
  config.log_every = 50              # steps between console/TensorBoard lines (and host syncs)
  config.eval_every = 500            # steps between eval passes and sample grids
  config.checkpoint_every = 500      # steps between (asynchronous) checkpoints
  config.keep_checkpoints = 3        # latest checkpoints kept
  config.keep_best = 1               # best checkpoints kept by best_metric (0: none)
  config.best_metric = 'ab_error'    # 'ab_error' or 'delta_e' (lower is better), 'psnr' or 'ssim'
  config.init_from = ''              # warm start params from this run's workdir or checkpoint
  config.skip_nonfinite = False      # non-finite step: skip its update and count it (False: stop)
  config.profile_steps = (0, 0)      # (first step, count): jax.profiler trace into WORKDIR/profile
  # compiled programs kept for the next process (unset: $COLORJAX_COMPILATION_CACHE, else
  # ~/.cache/colorjax/xla; '': off); a shared folder serves every host and resubmission
  config.compilation_cache_dir = config_dict.placeholder(str)

  config.benchmark = benchmark = ml_collections.ConfigDict()   # colorjax bench
  benchmark.steps = 20               # timed steps
  benchmark.warmup = 3               # untimed steps after compiling (CPU: the first two fault in memory)
  benchmark.input = 'synthetic'      # 'synthetic' (device batches, no TensorFlow) or 'pipeline'

  config.optim = optim = ml_collections.ConfigDict()
  optim.lr = 2e-4                    # peak learning rate
  optim.b1 = 0.9                     # Adam beta1
  optim.b2 = 0.999                   # Adam beta2
  optim.schedule = 'constant'        # 'constant', 'warmup', 'linear' (decay to 0), 'cosine' or
                                     # 'constant_then_linear' (decay to 0 from decay_start)
  optim.warmup_steps = 0             # linear warm-up steps
  optim.decay_start = 0.5            # constant_then_linear: share of num_steps before the decay
  optim.clip_norm = 0.0              # clip gradients to this global norm (0: off)

  config.model = model()

  config.data = data = ml_collections.ConfigDict()
  data.source = 'samples'            # 'samples', 'folder:PATH' or 'tfds:NAME'
  data.data_dir = ''                 # TFDS data directory ('' = TFDS's default, ~/tensorflow_datasets)
  data.train_split = 'train'         # TFDS split used for training
  data.eval_split = ''               # TFDS split for evaluation ('': 'validation', else 'test')
  data.image_key = 'image'           # TFDS feature that holds the image
  data.eval_fraction = 0.1           # folders and samples: share of files held out for eval
  data.pairing = 'paired'            # 'paired' ({"rgb"}) or 'unpaired' ({"a": gray, "b": colour})
  data.color_space = 'rgb'           # 'rgb': uint8 batches, Lab on the device; 'lab': float32 Lab from tf.data
  data.scale_range = (1.0, 1.0)      # training: short side resized to image_size × U(lo, hi), then cropped
  data.flip = True                   # training: random horizontal flips
  data.drop_grayscale = False        # drop images whose mean chroma is below grayscale_chroma
  data.grayscale_chroma = 3.0        # mean CIE chroma (ab units) under which an image counts as gray
  data.max_pixels = 64_000_000       # images with more pixels (by their header) are skipped
  data.threads = 0                   # tf.data worker threads per process (0: one per host core)
  data.shuffle_buffer = 4096         # TFDS: shuffle buffer of encoded images (file lists shuffle whole)
  return config


def model(name='unet', preset='portrait'):
  """The model group of network ``name`` at ``preset``: the fields every network reads, then
  those only ``name`` reads. Any preset field can be overridden; None keeps the preset's."""
  model = ml_collections.ConfigDict()
  model.name = name                  # the network (the generator of a GAN): 'unet', 'fusion'
                                     # (the fusion CNN), 'vgg' (VGG16-encoder U-Net), 'resnet'
  model.preset = preset              # U-Net: 'portrait' (128²) or 'pix2pix' (U-Net-256);
                                     # fusion: 'koalarization' or 'global_local'; vgg: 'vgg16';
                                     # resnet: 'resnet_9blocks' or 'resnet_6blocks'
  model.norm = config_dict.placeholder(str)             # 'batch', 'instance' or 'none'
  model.upsample = config_dict.placeholder(str)         # 'subpixel', 'transpose' or 'resize'
  model.output_activation = config_dict.placeholder(str)  # 'tanh', 'sigmoid' or 'none'
  # Read by one network each, but checked for every one (colorjax/tasks/network.py).
  model.activation = config_dict.placeholder(str)       # unet: 'relu' or 'leaky_relu'
  model.width = config_dict.placeholder(int)            # resnet: channels of the first conv
  model.blocks = config_dict.placeholder(int)           # resnet: residual blocks
  if name in ('unet', 'vgg'):
    model.features = config_dict.placeholder(tuple)     # channels per level
  if name == 'unet':
    model.convs_per_level = config_dict.placeholder(int)  # 3x3 convs per level
    model.dropout = config_dict.placeholder(float)      # dropout rate in the inner decoder
  if name == 'vgg':
    model.convs_per_block = config_dict.placeholder(int)  # 3x3 convs per VGG16 block
  if name == 'fusion':
    model.fusion_features = config_dict.placeholder(int)  # channels of the 1x1 fusion conv
    model.vgg_features = 'pool'      # VGG16's mean block5_pool, or 'fc2' (at 224²)
    model.vgg_trainable = False      # train the VGG16 branch too (default: frozen)
  if name in ('fusion', 'vgg'):
    model.vgg_weights = ''           # Keras VGG16 .h5 ('': the Keras cache, else random)
  return model
