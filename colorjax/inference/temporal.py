"""Steadier colour in films: a frame's ab blended with the frames' before it where its L says the
picture did not change, started afresh at each scene cut.

Frame by frame, a network guesses each frame's ab anew, so a still wall changes colour from frame
to frame. ``Smoother`` keeps, at each pixel, a share ``keep · exp(-(ΔL / scale)²)`` of the
previous frame's (already smoothed) ab, where ΔL is the change since that frame of L averaged
over a small window (so film grain, which the window averages away, does not count as motion):
still pixels average over the last few frames, moving ones take the new frame's ab. A frame whose mean |ΔL| exceeds
``CUT_L_CHANGE`` starts a new scene and is not blended with the one before. Work is at the
network's resolution, in NumPy, on the host. docs/video.md has the measurements behind the
defaults.
"""
import numpy as np
from scipy import ndimage

METHODS = ('none', 'smooth')
KEEP = 0.75          # the previous frame's share of ab where L did not change at all
SCALE = 3.0          # Lab units of local ΔL at which that share falls to 1/e of KEEP
WINDOW = 5           # pixels (at the network's resolution) over which ΔL is averaged
CUT_L_CHANGE = 12.0  # mean |ΔL| (Lab units) over the frame above which a frame starts a scene


class Smoother:
  """``smoother(L, ab)`` for consecutive frames at the network's resolution (L [R, R, 1],
  ab [R, R, 2], Lab units) -> (the ab to use, whether the frame starts a scene)."""

  def __init__(self, method='smooth', keep=KEEP, scale=SCALE, cut=CUT_L_CHANGE):
    if method not in METHODS:
      raise ValueError(f'temporal={method!r}; use one of {METHODS}')
    self.method, self.keep, self.scale, self.cut = method, keep, scale, cut
    self._L = self._local_L = self._ab = None

  def __call__(self, L, ab):
    local_L = ndimage.uniform_filter(L, size=(WINDOW, WINDOW, 1), mode='nearest')
    starts_scene = self._L is None or float(np.abs(L - self._L).mean()) > self.cut
    if self.method == 'smooth' and not starts_scene:
      share = self.keep * np.exp(-np.square((local_L - self._local_L) / self.scale))
      ab = share * self._ab + (1 - share) * ab
    self._L, self._local_L, self._ab = L, local_L, ab
    return ab, starts_scene
