"""The same training steps in eager PyTorch and in colorjax, in one process: images/sec of each.

  python -m benchmarks.vs_pytorch                # unet, pix2pix, cyclegan; batch 1 and 8 (CPU)
  python -m benchmarks.vs_pytorch --workloads=unet --batch_sizes=1 --steps=5 --repeats=3

On a 2-core CPU a 256² step takes seconds (U-Net) to minutes (CycleGAN at batch 8, colorjax's
'transpose'), so the defaults there run for hours: pick workloads, batches and steps.

Workloads (256², Adam lr 2e-4; beta1 0.5 for the GANs), the same networks and losses on both
sides, each step starting from a uint8 RGB batch already on the device and converting it to Lab
there:

  unet      the pix2pix U-Net-256 (L -> ab, tanh), L1 on normalised ab.
  pix2pix   that U-Net + a 70x70 PatchGAN (batch norm) on concat(L, ab): D update on real and
            fake (BCE from logits), then G update (BCE + 100 L1); one generator forward.
  cyclegan  two ResNet-9 generators (L -> ab, Lab -> L) and two instance-norm PatchGANs (L, Lab):
            LSGAN, cycle L1 x10 both ways, identity 0.5 x10 for G_BA; G update, then D update.
            (colorjax's image pool of fakes is not reproduced in PyTorch: it is a few copies.)

PyTorch runs eagerly (NCHW, its pix2pix/CycleGAN-style modules, ConvTranspose2d(4, 2, 1)) on
CUDA when available, else on the CPU; colorjax runs ``colorjax.training.benchmark.measure`` on the
configs in configs/ (no TensorFlow). The sides alternate (torch, colorjax, torch, ...)
``--repeats`` times; each run reports its median step time over ``--steps`` steps after
``--warmup`` steps, and the table quotes the median images/sec of the runs and the ratio of
those medians (colorjax / PyTorch, above 1 means colorjax is faster), next to the lowest and
highest ratio of a run pair (each colorjax run against the PyTorch run just before it): on a
shared CPU the load moves both sides by several percent, and the range shows how far a ratio
near 1 can be trusted. colorjax is measured
once per ``--upsample`` value against the same PyTorch figure: 'transpose' is the identical
architecture, 'subpixel' (a 3x3 conv to 4x the channels, then depth-to-space) colorjax's
faster alternative. Prints a markdown table, then one JSON line per workload.

PyTorch is optional: without it this prints one sentence and exits 0.
"""
import argparse
import functools
import importlib.util
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time
import types

from colorjax.cli import host_memory

NO_TORCH = "PyTorch is not installed; pip install -e '.[bench]' to compare against it."
ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKLOADS = ('unet', 'pix2pix', 'cyclegan')
CONFIG_FILES = {'unet': 'unet', 'pix2pix': 'cgan', 'cyclegan': 'cyclegan'}
UPSAMPLES = ('transpose', 'subpixel', 'resize')
TORCH_UPSAMPLE = 'transpose'   # the architecture the PyTorch side builds
LR = 2e-4
GAN_B1 = 0.5
L1_WEIGHT = 100.0              # pix2pix: generator loss = GAN + 100 L1
CYCLE_WEIGHT = 10.0            # CycleGAN: lambda of the cycle losses
IDENTITY_WEIGHT = 0.5          # CycleGAN: identity loss weight, times lambda

# sRGB -> CIE XYZ (D65) and the D65 white: written out here so that the PyTorch Lab conversion
# is an independent implementation (tests/test_vs_pytorch.py checks it against colorjax.core.color).
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                 (0.212671, 0.715160, 0.072169),
                 (0.019334, 0.119193, 0.950227))
_D65 = (0.95047, 1.0, 1.08883)
L_SCALE, AB_SCALE = 50.0, 110.0   # L in [0, 100] -> [-1, 1]; ab / 110


def csv_of(kind, allowed=None):
  def parse(text):
    values = [kind(v) for v in text.split(',') if v.strip()]
    bad = [v for v in values if allowed and v not in allowed]
    if not values or bad:
      raise argparse.ArgumentTypeError(
          f'{text!r}: use a comma-separated list' + (f' of {", ".join(allowed)}' if allowed
                                                     else ''))
    return values
  return parse


def parse_args(argv=None):
  parser = argparse.ArgumentParser(prog='python -m benchmarks.vs_pytorch',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--workloads', type=csv_of(str, WORKLOADS), default=list(WORKLOADS))
  parser.add_argument('--batch_sizes', type=csv_of(int), default=None,
                      help='default 1,8 on a CPU, 1,64 on an accelerator')
  parser.add_argument('--image_size', type=int, default=256)
  parser.add_argument('--steps', type=int, default=10, help='timed steps per run')
  parser.add_argument('--warmup', type=int, default=3,
                      help="untimed steps before them; keep 3 or more on a CPU, where colorjax's "
                           'first two steps fault in its XLA temp buffers')
  parser.add_argument('--repeats', type=int, default=3,
                      help='alternating runs of each side; medians are quoted')
  parser.add_argument('--compute_dtype', choices=('float32', 'bfloat16'), default='float32')
  parser.add_argument('--upsample', type=csv_of(str, UPSAMPLES), default=['transpose', 'subpixel'],
                      help="colorjax's model.upsample values, one row each")
  args = parser.parse_args(argv)
  if min(args.batch_sizes or [1]) < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1:
    parser.error('batch sizes, --steps and --repeats must be at least 1, --warmup at least 0')
  return args


# ----------------------------------------------------------------------------------------------
# PyTorch: colour conversion, networks and training steps. torch is imported on first use, so
# this module imports (and skips cleanly) without it.

def torch_rgb_to_lab(rgb):
  """sRGB float [..., 3] in [0, 1] -> CIE Lab (D65, L in [0, 100]), in torch."""
  import torch
  matrix = torch.tensor(_XYZ_FROM_RGB, dtype=rgb.dtype, device=rgb.device)
  matrix = matrix / torch.tensor(_D65, dtype=rgb.dtype, device=rgb.device)[:, None]
  linear = torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4,
                       rgb / 12.92)
  t = linear @ matrix.T
  f = torch.where(t > 0.008856, t.clamp_min(0.008856) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
  fx, fy, fz = f.unbind(-1)
  return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-1)


def torch_normalised_lab(pixels):
  """uint8 RGB [N, H, W, 3] on the device -> normalised Lab [N, 3, H, W] (L in [-1, 1], ab / 110),
  contiguous NCHW as PyTorch's convolutions take it."""
  lab = torch_rgb_to_lab(pixels.float() / 255.0)
  lab = lab / lab.new_tensor([L_SCALE, AB_SCALE, AB_SCALE]) - lab.new_tensor([1.0, 0.0, 0.0])
  return lab.permute(0, 3, 1, 2).contiguous()


@functools.cache
def _torch_modules():
  """The PyTorch network classes (defined on first use: they subclass torch.nn.Module)."""
  import torch
  from torch import nn

  class BatchNorm(nn.BatchNorm2d):
    """BatchNorm2d (flax's momentum 0.9 = torch's 0.1) that also normalises a single value per
    channel in training, as flax does (the U-Net's innermost level is 1x1; at batch 1 torch's
    functional check refuses it). Running statistics are not updated from one value."""

    def __init__(self, channels):
      super().__init__(channels, momentum=0.1)

    def forward(self, x):
      if self.training and x.numel() == x.shape[1]:
        return torch.batch_norm(x, self.weight, self.bias, None, None, True, 0.0, self.eps,
                                torch.backends.cudnn.enabled)
      return super().forward(x)

  def norm(kind, channels):
    if kind == 'batch':
      return BatchNorm(channels)
    if kind == 'instance':       # flax's InstanceNorm has a scale and a bias
      return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()

  class UNet256(nn.Module):
    """colorjax's U-Net preset 'pix2pix' (models/unet.py): eight 4x4 stride-2 convs down
    (LeakyReLU 0.2; batch norm from the second on, no bias before it), seven 4x4 stride-2
    transposed convs up (with bias) + BN + ReLU (+ dropout 0.5 in the three innermost), each
    joined to its skip; a last transposed conv to 64 + ReLU, a 1x1 conv, tanh."""

    def __init__(self, in_channels=1, out_channels=2,
                 features=(64, 128, 256, 512, 512, 512, 512, 512), dropout_levels=3):
      super().__init__()
      self.down, self.up = nn.ModuleList(), nn.ModuleList()
      previous = in_channels
      for level, width in enumerate(features):
        block = [nn.Conv2d(previous, width, 4, 2, 1, bias=level == 0)]
        if level > 0:
          block.append(BatchNorm(width))
        block.append(nn.LeakyReLU(0.2, inplace=True))
        self.down.append(nn.Sequential(*block))
        previous = width
      for level in reversed(range(len(features) - 1)):
        width = features[level]
        block = [nn.ConvTranspose2d(previous, width, 4, 2, 1), BatchNorm(width),
                 nn.ReLU(inplace=True)]
        if len(features) - 1 - level <= dropout_levels:
          block.append(nn.Dropout(0.5))
        self.up.append(nn.Sequential(*block))
        previous = 2 * width
      self.head = nn.Sequential(nn.ConvTranspose2d(previous, features[0], 4, 2, 1),
                                nn.ReLU(inplace=True), nn.Conv2d(features[0], out_channels, 1),
                                nn.Tanh())

    def forward(self, x):
      skips = []
      for block in self.down:
        x = block(x)
        skips.append(x)
      skips.pop()
      for block in self.up:
        x = torch.cat([block(x), skips.pop()], dim=1)
      return self.head(x)

  def patchgan(in_channels, features=64, n_layers=3, norm_kind='batch'):
    """colorjax's PatchGAN (models/patchgan.py) = pix2pix's NLayerDiscriminator: 4x4 convs,
    padding 1, LeakyReLU 0.2; 70x70 patches with n_layers=3."""
    layers, previous = [], in_channels
    for layer in range(n_layers + 1):
      width = features * min(2 ** layer, 8)
      use_norm = layer > 0 and norm_kind != 'none'
      layers.append(nn.Conv2d(previous, width, 4, 2 if layer < n_layers else 1, 1,
                              bias=not use_norm))
      if use_norm:
        layers.append(norm(norm_kind, width))
      layers.append(nn.LeakyReLU(0.2, inplace=True))
      previous = width
    layers.append(nn.Conv2d(previous, 1, 4, 1, 1))
    return nn.Sequential(*layers)

  class ResnetBlock(nn.Module):
    def __init__(self, channels, norm_kind):
      super().__init__()
      bias = norm_kind == 'none'
      self.body = nn.Sequential(
          nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
          norm(norm_kind, channels), nn.ReLU(inplace=True),
          nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
          norm(norm_kind, channels))

    def forward(self, x):
      return x + self.body(x)

  def resnet_generator(in_channels, out_channels, width=64, blocks=9, norm_kind='instance'):
    """colorjax's ResnetGenerator (models/resnet.py), CycleGAN's resnet_9blocks: reflect-pad 3 +
    7x7 conv, two stride-2 3x3 convs, residual blocks, two 4x4 stride-2 transposed convs, reflect
    pad 3 + 7x7 conv, tanh; norm + ReLU after every conv but the last (no bias before a norm)."""
    bias = norm_kind == 'none'
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
              norm(norm_kind, width), nn.ReLU(inplace=True)]
    for level in (1, 2):
      layers += [nn.Conv2d(width * 2 ** (level - 1), width * 2 ** level, 3, 2, 1, bias=bias),
                 norm(norm_kind, width * 2 ** level), nn.ReLU(inplace=True)]
    layers += [ResnetBlock(width * 4, norm_kind) for _ in range(blocks)]
    for level in (1, 0):
      layers += [nn.ConvTranspose2d(width * 2 ** (level + 1), width * 2 ** level, 4, 2, 1),
                 norm(norm_kind, width * 2 ** level), nn.ReLU(inplace=True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)

  return types.SimpleNamespace(torch=torch, nn=nn, UNet256=UNet256, patchgan=patchgan,
                               resnet_generator=resnet_generator)


def torch_unet256(in_channels=1, out_channels=2, **kwargs):
  """kwargs: features, dropout_levels (thinner variants for tests)."""
  return _torch_modules().UNet256(in_channels, out_channels, **kwargs)


def torch_patchgan(in_channels, norm='batch', **kwargs):
  """kwargs: features, n_layers."""
  return _torch_modules().patchgan(in_channels, norm_kind=norm, **kwargs)


def torch_resnet9(in_channels, out_channels, **kwargs):
  """kwargs: width, blocks."""
  return _torch_modules().resnet_generator(in_channels, out_channels, **kwargs)


def count_params(module):
  return sum(p.numel() for p in module.parameters())


def _adam(modules, b1):
  import torch
  params = [p for m in modules for p in m.parameters()]
  return torch.optim.Adam(params, lr=LR, betas=(b1, 0.999), eps=1e-8)


def _requires_grad(modules, flag):
  for module in modules:
    for p in module.parameters():
      p.requires_grad_(flag)


def torch_workload(name, device, compute_dtype='float32'):
  """(step(batch) -> loss, {path: network}) of a workload in PyTorch, freshly initialised;
  the paths are those of the networks' params in colorjax's TrainState."""
  import torch
  import torch.nn.functional as F
  autocast = functools.partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16,
                               enabled=compute_dtype == 'bfloat16')

  if name == 'unet':
    generator = torch_unet256().to(device).train()
    opt = _adam([generator], 0.9)

    def step(batch):
      lab = torch_normalised_lab(batch['rgb'])
      L, ab = lab[:, :1], lab[:, 1:]
      with autocast():
        output = generator(L)
      loss = (output.float() - ab).abs().mean()
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
      return loss
    return step, {(): generator}

  if name == 'pix2pix':
    generator = torch_unet256().to(device).train()
    discriminator = torch_patchgan(3).to(device).train()
    g_opt, d_opt = _adam([generator], GAN_B1), _adam([discriminator], GAN_B1)
    bce = lambda logits, target: F.binary_cross_entropy_with_logits(
        logits.float(), torch.full_like(logits, target, dtype=torch.float32))

    def step(batch):
      lab = torch_normalised_lab(batch['rgb'])
      L, ab = lab[:, :1], lab[:, 1:]
      with autocast():
        fake_ab = generator(L)
        fake = torch.cat([L, fake_ab.to(L.dtype)], dim=1)
        # D: real and fake passed separately, fakes detached.
        _requires_grad([discriminator], True)
        d_loss = 0.5 * (bce(discriminator(lab), 1.0) + bce(discriminator(fake.detach()), 0.0))
      d_opt.zero_grad(set_to_none=True)
      d_loss.backward()
      d_opt.step()
      # G: through the updated D (its weights frozen), GAN + 100 L1.
      _requires_grad([discriminator], False)
      with autocast():
        g_loss = bce(discriminator(fake), 1.0) + L1_WEIGHT * (fake_ab.float() - ab).abs().mean()
      g_opt.zero_grad(set_to_none=True)
      g_loss.backward()
      g_opt.step()
      return g_loss
    return step, {('generator',): generator, ('discriminator',): discriminator}

  if name == 'cyclegan':
    g_ab, g_ba = torch_resnet9(1, 2).to(device).train(), torch_resnet9(3, 1).to(device).train()
    d_a = torch_patchgan(1, 'instance').to(device).train()
    d_b = torch_patchgan(3, 'instance').to(device).train()
    g_opt, d_opt = _adam([g_ab, g_ba], GAN_B1), _adam([d_a, d_b], GAN_B1)
    mse = lambda x, target: F.mse_loss(x.float(), torch.full_like(x, target, dtype=torch.float32))
    l1 = lambda x, y: (x.float() - y.float()).abs().mean()

    def step(batch):
      real_L = torch_normalised_lab(batch['a'])[:, :1]     # domain A: L (1 channel)
      real_lab = torch_normalised_lab(batch['b'])          # domain B: Lab (3 channels)
      # Generators (one Adam over both), discriminators frozen.
      _requires_grad([d_a, d_b], False)
      with autocast():
        fake_lab = torch.cat([real_L, g_ab(real_L).to(real_L.dtype)], dim=1)  # A -> B keeps L
        rec_L = g_ba(fake_lab)                                                 # A -> B -> A
        fake_L = g_ba(real_lab)                                                # B -> A
        rec_lab = torch.cat([fake_L, g_ab(fake_L).to(fake_L.dtype)], dim=1)    # B -> A -> B
        idt_L = g_ba(torch.cat([real_L, torch.zeros_like(real_lab[:, 1:])], dim=1))
        g_loss = (mse(d_b(fake_lab), 1.0) + mse(d_a(fake_L), 1.0)
                  + CYCLE_WEIGHT * (l1(rec_L, real_L) + l1(rec_lab, real_lab))
                  + IDENTITY_WEIGHT * CYCLE_WEIGHT * l1(idt_L, real_L))
      g_opt.zero_grad(set_to_none=True)
      g_loss.backward()
      g_opt.step()
      # Discriminators (one Adam over both) on this step's fakes (no image pool here).
      _requires_grad([d_a, d_b], True)
      with autocast():
        d_loss = 0.5 * (mse(d_a(real_L), 1.0) + mse(d_a(fake_L.detach()), 0.0)
                        + mse(d_b(real_lab), 1.0) + mse(d_b(fake_lab.detach()), 0.0))
      d_opt.zero_grad(set_to_none=True)
      d_loss.backward()
      d_opt.step()
      return g_loss
    return step, {('generator', 'ab'): g_ab, ('generator', 'ba'): g_ba,
                  ('discriminator', 'a'): d_a, ('discriminator', 'b'): d_b}

  raise ValueError(f'unknown workload {name!r}; use one of {", ".join(WORKLOADS)}')


def torch_batch(name, batch_size, image_size, device, seed=0):
  """Random uint8 RGB on the device: {'rgb'} or, for CycleGAN, unpaired {'a', 'b'}."""
  import torch
  generator = torch.Generator(device='cpu').manual_seed(seed)
  names = ('a', 'b') if name == 'cyclegan' else ('rgb',)
  return {n: torch.randint(0, 256, (batch_size, image_size, image_size, 3), dtype=torch.uint8,
                           generator=generator).to(device) for n in names}


def torch_device():
  import torch
  return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def _synchronize(device):
  import torch
  if device.type == 'cuda':
    torch.cuda.synchronize(device)


def measure_torch(name, batch_size, image_size, steps, warmup, compute_dtype, device,
                  compiled=False):
  """{step_s_median, images_per_s, ...} of the PyTorch step, timed as
  colorjax.training.benchmark.measure times its own: the same batch every step, one synchronisation per step; ``compiled``: the
  step under ``torch.compile`` (compiled during the warm-up steps)."""
  import torch
  torch.manual_seed(0)
  step, networks = torch_workload(name, device, compute_dtype)
  if compiled:
    step = torch.compile(step)
  batch = torch_batch(name, batch_size, image_size, device)
  for _ in range(warmup):
    step(batch)
  _synchronize(device)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    loss = step(batch)
    _synchronize(device)
    times.append(time.perf_counter() - start)
  loss = float(loss.detach())
  if not math.isfinite(loss):
    raise FloatingPointError(f"PyTorch {name}: the loss is {loss}")
  median = statistics.median(times)
  del step, networks, batch
  return {'step_s_median': median, 'images_per_s': batch_size / median}


# ----------------------------------------------------------------------------------------------
# colorjax

def load_config(name):
  """configs/NAME.py's get_config(), or None when the file does not exist."""
  path = ROOT / 'configs' / f'{name}.py'
  if not path.is_file():
    return None
  spec = importlib.util.spec_from_file_location(f'colorjax_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


# Config fields each workload pins (on top of configs/FILE.py), so that the colorjax side is
# the network and the losses the PyTorch side runs whatever the config files' defaults become.
_PRESET_FIELDS = ('features', 'width', 'blocks', 'convs_per_level', 'norm', 'activation',
                  'dropout', 'output_activation')   # None: the preset's value
WORKLOAD_FIELDS = {
    'unet': {'task': 'regression', 'model.name': 'unet', 'model.preset': 'pix2pix',
             'optim.b1': 0.9, 'loss.weights': {'l1': 1.0}, 'loss.switch_weights': {},
             'loss.switch_step': 0},
    'pix2pix': {'task': 'paired_gan', 'model.name': 'unet', 'model.preset': 'pix2pix',
                'optim.b1': GAN_B1, 'gan.objective': 'vanilla', 'gan.epsilon': 0.0,
                'gan.l1_weight': L1_WEIGHT, 'gan.discriminator': 'patchgan',
                'gan.d_features': 64, 'gan.d_layers': 3, 'gan.d_norm': 'batch'},
    'cyclegan': {'task': 'cyclegan', 'model.name': 'resnet', 'model.preset': 'resnet_9blocks',
                 'optim.b1': GAN_B1, 'gan.objective': 'lsgan', 'gan.discriminator': 'patchgan',
                 'gan.d_features': 64, 'gan.d_layers': 3, 'gan.d_norm': 'instance',
                 'gan.cycle_weight': CYCLE_WEIGHT, 'gan.identity_weight': IDENTITY_WEIGHT,
                 'data.pairing': 'unpaired'},
}


def _set(config, field, value, source):
  *parents, leaf = field.split('.')
  node = config
  for key in parents:
    node = node.get(key) if hasattr(node, 'get') else None
  if node is None or leaf not in node:
    raise LookupError(f'{source} has no field {field}, so it is not the colorjax version this '
                      'benchmark was written for.')
  node[leaf] = value


def colorjax_config(name, batch_size, image_size, compute_dtype, upsample):
  """The workload's colorjax config (configs/FILE.py with WORKLOAD_FIELDS and these settings),
  or a sentence saying why there is none."""
  source = f'configs/{CONFIG_FILES[name]}.py'
  config = load_config(CONFIG_FILES[name])
  if config is None:
    return f'{source} not found, so the {name} workload is skipped.'
  fields = {'image_size': image_size, 'batch_size': batch_size, 'compute_dtype': compute_dtype,
            'skip_nonfinite': False, 'optim.lr': LR, 'optim.b2': 0.999,
            'optim.schedule': 'constant', 'optim.warmup_steps': 0, 'optim.clip_norm': 0.0,
            **{f'model.{f}': None for f in _PRESET_FIELDS if f in config.model},
            **WORKLOAD_FIELDS[name], 'model.upsample': upsample}
  try:
    for field, value in fields.items():
      _set(config, field, value, source)
  except LookupError as e:
    return str(e.args[0])
  return config


def measure_colorjax(config, steps, warmup):
  from colorjax.training import benchmark
  config.benchmark.steps, config.benchmark.warmup = steps, warmup
  return benchmark.measure(config)


# ----------------------------------------------------------------------------------------------
# The comparison

def _median(values):
  return statistics.median(values) if values else None


def run_workload(name, args, device, log):
  """One workload at every batch size: alternating PyTorch and colorjax runs. Returns
  (rows, None) or (None, the sentence saying why it was skipped)."""
  for upsample in args.upsample:
    config = colorjax_config(name, 1, args.image_size, args.compute_dtype, upsample)
    if isinstance(config, str):
      return None, config
  rows = []
  for batch_size in args.batch_sizes:
    torch_runs, jax_runs = [], {u: [] for u in args.upsample}
    for repeat in range(args.repeats):
      result = measure_torch(name, batch_size, args.image_size, args.steps, args.warmup,
                             args.compute_dtype, device)
      torch_runs.append(result)
      log(f'{name} batch {batch_size} run {repeat + 1}/{args.repeats}: PyTorch '
          f'{result["images_per_s"]:.3g} img/s')
      for upsample in args.upsample:
        config = colorjax_config(name, batch_size, args.image_size, args.compute_dtype, upsample)
        result = measure_colorjax(config, args.steps, args.warmup)
        jax_runs[upsample].append(result)
        log(f'{name} batch {batch_size} run {repeat + 1}/{args.repeats}: colorjax {upsample} '
            f'{result["images_per_s"]:.3g} img/s (compile {result["compile_s"]:.1f} s)')
    torch_ips = _median([r['images_per_s'] for r in torch_runs])
    for upsample in args.upsample:
      runs = jax_runs[upsample]
      jax_ips = _median([r['images_per_s'] for r in runs])
      pairs = [j['images_per_s'] / t['images_per_s'] for t, j in zip(torch_runs, runs)]
      rows.append({
          'workload': name, 'batch_size': batch_size, 'image_size': args.image_size,
          'compute_dtype': args.compute_dtype, 'upsample': upsample,
          'same_architecture': upsample == TORCH_UPSAMPLE,
          'torch_images_per_s': torch_ips,
          'torch_images_per_s_runs': [r['images_per_s'] for r in torch_runs],
          'colorjax_images_per_s': jax_ips,
          'colorjax_images_per_s_runs': [r['images_per_s'] for r in runs],
          'ratio': jax_ips / torch_ips, 'ratio_runs': pairs,
          'colorjax_compile_s': runs[0]['compile_s'],
          'colorjax_flops_per_step': runs[0]['flops_per_step'],
          'colorjax_utilisation': _median([r['utilisation'] for r in runs
                                           if r['utilisation'] is not None]),
          'colorjax_task': runs[0]['task'], 'steps': args.steps, 'warmup': args.warmup,
          'repeats': args.repeats})
  return rows, None


def table(rows):
  lines = [('| workload | batch | colorjax upsample | PyTorch img/s | colorjax img/s | '
            'colorjax / PyTorch | run pairs | colorjax compile |'),
           '|---|---:|---|---:|---:|---:|---:|---:|']
  for row in rows:
    upsample = row['upsample'] + (' (= PyTorch)' if row['same_architecture'] else '')
    pairs = f"{min(row['ratio_runs']):.2f}–{max(row['ratio_runs']):.2f}×"
    lines.append(f"| {row['workload']} | {row['batch_size']} | {upsample} | "
                 f"{row['torch_images_per_s']:.3g} | {row['colorjax_images_per_s']:.3g} | "
                 f"{row['ratio']:.2f}× | {pairs} | {row['colorjax_compile_s']:.0f} s |")
  return '\n'.join(lines)


def environment(device):
  import jax
  import torch
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  torch_device_name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
                       else f'CPU, {torch.get_num_threads()} threads')
  return {'torch': torch.__version__, 'torch_device': torch_device_name,
          'jax': jax.__version__, 'jax_device': f'{jax.device_count()} × '
                                                f'{jax.devices()[0].device_kind}',
          'cpu': cpu, 'cpu_count': os.cpu_count(), 'python': platform.python_version()}


def _load():
  """The 1-minute load average (other processes on a shared CPU skew both sides, PyTorch's
  OpenMP threads the most), or None where the OS has none."""
  try:
    return round(os.getloadavg()[0], 2)
  except (AttributeError, OSError):
    return None


def main(argv=None):
  args = parse_args(argv)
  malloc = 'kept' if host_memory.keep_freed_memory().kept else 'system'
  try:
    import torch
  except ImportError:
    print(NO_TORCH)
    return 0
  log = lambda message: print(message, file=sys.stderr, flush=True)
  device = torch_device()
  if device.type == 'cuda':
    torch.backends.cudnn.benchmark = True
  if args.batch_sizes is None:
    import jax
    args.batch_sizes = [1, 8] if jax.default_backend() == 'cpu' else [1, 64]
  env = {**environment(device), 'malloc': malloc}
  load_before, start = _load(), time.perf_counter()
  all_rows, skipped, failed = [], [], False
  per_workload = []
  for name in args.workloads:
    try:
      rows, why = run_workload(name, args, device, log)
    except Exception as e:  # one broken workload must not hide the others' figures
      rows, why, failed = None, f'the {name} workload failed: {type(e).__name__}: {e}', True
    if why:
      skipped.append(why)
      log(why)
      continue
    all_rows += rows
    per_workload.append({'workload': name, **env, 'rows': rows})
  env.update(load_before=load_before, load_after=_load(),
             wall_s=round(time.perf_counter() - start, 1))
  for record in per_workload:
    record.update(env)
  print(f"PyTorch {env['torch']} ({env['torch_device']}) vs colorjax on jax {env['jax']} "
        f"({env['jax_device']}); CPU: {env['cpu']} ({env['cpu_count']} cores; load average "
        f"{env['load_before']} before, {env['load_after']} after). {args.image_size}², "
        f'{args.compute_dtype}; median images/sec of {args.repeats} alternating runs, each the '
        f'median of {args.steps} steps after {args.warmup} warm-up steps; malloc {malloc} '
        f'(host_memory); {env["wall_s"]:.0f} s in all.\n')
  if all_rows:
    print(table(all_rows))
  for why in skipped:
    print(f'\n{why}')
  for record in per_workload:
    print(json.dumps(record))
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
