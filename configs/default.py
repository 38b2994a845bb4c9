"""The base every colorjax experiment starts from; runs as is on the bundled sample photos.

  colorjax preview --config=configs/default.py --output=runs/sheet.png

Override any field on the command line, e.g. ``--config.data.source=folder:~/photos``.
"""
import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.seed = 0                    # seeds data order, augmentation and initialisation
  config.mode = 'train'              # what main.py does with this config
  config.image_size = 128            # training crop side in pixels (square)
  config.batch_size = 16             # global batch, split evenly over processes and devices

  config.data = data = ml_collections.ConfigDict()
  data.source = 'samples'            # 'samples', 'folder:PATH' or 'tfds:NAME'
  data.data_dir = ''                 # TFDS data directory ('' = TFDS's default, ~/tensorflow_datasets)
  data.train_split = 'train'         # TFDS split used for training
  data.eval_split = 'test'           # TFDS split used for evaluation
  data.image_key = 'image'           # TFDS feature that holds the image
  data.eval_fraction = 0.1           # folders and samples: share of files held out for eval
  data.pairing = 'paired'            # 'paired' ({"rgb"}) or 'unpaired' ({"a": gray, "b": colour})
  data.color_space = 'rgb'           # 'rgb': uint8 batches, Lab on the device; 'lab': float32 Lab from tf.data
  data.scale_range = (1.0, 1.0)      # training: short side resized to image_size × U(lo, hi), then cropped
  data.flip = True                   # training: random horizontal flips
  data.drop_grayscale = False        # drop images whose mean chroma is below grayscale_chroma
  data.grayscale_chroma = 3.0        # mean CIE chroma (ab units) under which an image counts as gray
  data.max_pixels = 64_000_000       # images with more pixels (by their header) are skipped
  data.shuffle_buffer = 4096         # TFDS: shuffle buffer of encoded images (file lists shuffle whole)
  return config
