"""Pathfinder drawing: LRA parameters, geometric primitives and cached paddle stamps.

The Pathfinder images of LRA (Tay et al. 2021) come from the two-snake generator of Kim*,
Linsley* et al. (ICLR 2020), itself derived from the Pathfinder challenge of Linsley et al.
(NeurIPS 2018), run with the per-resolution overrides of LRA's TFDS builders. This module holds
what does not depend on randomness (docs/GENERATORS.md §2.2-§2.5): the parameter table, the
primitives (``translate``, ``flip``, ``disk``, ``dilate``, ``lanczos_down``, ``to_u8``), paddle
stamps and seed kernels, and ``Geometry``, which caches every stamp, kernel and candidate set of
one (parameters, margin) pair, because they depend only on an angle drawn from a finite set
(§2.12 speed-up a). Coordinates are integer (row y, column x); an angle θ points along
(dy, dx) = (sin θ, cos θ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

RESOLUTIONS = (32, 64, 128, 256)
# difficulty -> (release folder, contour_length); distractor_length = contour_length // 3
DIFFICULTIES = {
    "easy": ("curv_baseline", 6),
    "intermediate": ("curv_contour_length_9", 9),
    "hard": ("curv_contour_length_14", 14),
}
FOLDER_TO_DIFFICULTY = {folder: name for name, (folder, _) in DIFFICULTIES.items()}
# How many distractor snakes are requested (§2.2 [UNK] decision): ``per_difficulty`` =
# K // distractor_length (default), ``baseline`` = K // 2 for every difficulty (the unmodified
# wrapper computed it once, from the baseline length).
DISTRACTOR_RULES = ("per_difficulty", "baseline")


@dataclass(frozen=True)
class Params:
    """Generator parameters of one LRA Pathfinder variant (docs/GENERATORS.md §2.2).

    Lengths are in low-resolution pixels; ``aa`` is the anti-aliasing (super-sampling) factor.
    Numbers keep the types of the LRA docstrings, because the metadata prints them with
    ``str()`` (``1.0``, ``0.5``, ``14``).
    """

    resolution: int
    padding: int
    aa: int
    paddle_length: int
    paddle_thickness: float
    margins: tuple[int, ...]
    seed_distance: int
    marker_radius: float
    continuity: float
    snake_contrast: float
    paddle_contrast: float
    distractor_budget: int
    contour_length: int = 14
    distractor_length: int = 4
    num_distractor_snakes: int = 5
    max_distractor_retrial: int = 4
    max_paddle_retrial: int = 2

    @property
    def target_contrast(self) -> float:
        """Contrast of target paddles: paddle_contrast x snake_contrast (§2.7 step 1)."""
        return self.paddle_contrast * self.snake_contrast


# §2.2 LRA overrides per resolution (difficulty fields are filled in by ``make_params``).
BASE_PARAMS = {
    32: Params(32, 1, 2, 2, 0.5, (1,), 7, 1.5, 1.0, 2.0, 0.75, 20),
    64: Params(64, 1, 2, 5, 1, (1,), 12, 2.5, 1.8, 0.8, 1.0, 22),
    128: Params(128, 1, 2, 5, 1.5, (2, 3), 20, 3, 1.8, 0.9, 1.0, 35),
    256: Params(256, 22, 2, 5, 2, (3,), 27, 5, 1.8, 1.0, 1.0, 30),
}


def difficulty_name(difficulty: str) -> str:
    """``easy``/``intermediate``/``hard`` (release folder names accepted as aliases)."""
    name = FOLDER_TO_DIFFICULTY.get(difficulty, difficulty)
    if name not in DIFFICULTIES:
        valid = [*DIFFICULTIES, *FOLDER_TO_DIFFICULTY]
        raise ValueError(f"unknown pathfinder difficulty {difficulty!r}; valid: {valid}")
    return name


def check_resolution(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"pathfinder resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    return int(resolution)


def make_params(
    resolution: int, difficulty: str, distractor_rule: str = "per_difficulty"
) -> Params:
    """Parameters of ``pathfinder<resolution>/<difficulty>`` (§2.2 tables)."""
    base = BASE_PARAMS[check_resolution(resolution)]
    length = DIFFICULTIES[difficulty_name(difficulty)][1]
    if distractor_rule not in DISTRACTOR_RULES:
        raise ValueError(f"unknown distractor rule {distractor_rule!r}; valid: {DISTRACTOR_RULES}")
    distractor_length = length // 3
    divisor = distractor_length if distractor_rule == "per_difficulty" else 2
    return replace(
        base,
        contour_length=length,
        distractor_length=distractor_length,
        num_distractor_snakes=base.distractor_budget // divisor,
    )


# --------------------------------------------------------------------------- primitives (§2.3)
def translate(p: tuple[int, int], theta: float, d: float) -> tuple[int, int]:
    """Point ``d`` along ``theta`` from ``p``, rounded up (ceil, as the original)."""
    return math.ceil(p[0] + d * math.sin(theta)), math.ceil(p[1] + d * math.cos(theta))


def flip(theta: float) -> float:
    """The opposite direction, kept in [-pi, pi)."""
    return theta + math.pi if theta < 0 else theta - math.pi


@cache
def disk(r: int) -> np.ndarray:
    """(2r+1)x(2r+1) bool kernel, True where dy^2 + dx^2 <= r^2."""
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy**2 + xx**2) <= r * r


def kernel_offsets(kernel: np.ndarray) -> np.ndarray:
    """Offsets [K, 2] (dy, dx) of the True taps of ``kernel`` relative to its centre."""
    cy, cx = kernel.shape[0] // 2, kernel.shape[1] // 2
    ys, xs = np.nonzero(kernel)
    return np.stack([ys - cy, xs - cx], axis=1)


def dilate(a: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Grey dilation in OpenCV's convention: out(p) = max_o a(p + o), kernel not reflected.

    Args:
        a: [H, W] image. offsets: [K, 2] tap offsets (dy, dx) relative to the anchor.
    Returns:
        [H, W] float64; taps outside the canvas count as -inf, so a pixel with no tap inside
        the canvas is -inf (the §2.5 border quirk).
    """
    h, w = a.shape
    out = np.full((h, w), -np.inf)
    src = a.astype(np.float64, copy=False)
    for dy, dx in offsets.tolist():
        ys, ye = max(0, -dy), min(h, h - dy)
        xs, xe = max(0, -dx), min(w, w - dx)
        if ys < ye and xs < xe:
            region = out[ys:ye, xs:xe]
            np.maximum(region, src[ys + dy : ye + dy, xs + dx : xe + dx], out=region)
    return out


def any_tap(blocked: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boolean dilation: out(p) = any_o blocked(p + o) over the taps inside the canvas.

    ``dilate(B, K) <= level`` equals ``~any_tap(B > level, K)`` wherever ``dilate`` is finite.
    """
    h, w = blocked.shape
    out = np.zeros((h, w), dtype=bool)
    for dy, dx in offsets.tolist():
        ys, ye = max(0, -dy), min(h, h - dy)
        xs, xe = max(0, -dx), min(w, w - dx)
        if ys < ye and xs < xe:
            out[ys:ye, xs:xe] |= blocked[ys + dy : ye + dy, xs + dx : xe + dx]
    return out


def lanczos_down(img: np.ndarray, n: int) -> np.ndarray:
    """Resize a square uint8 image to n x n with Pillow's Lanczos-3 filter (uint8 out)."""
    return np.asarray(Image.fromarray(img).resize((n, n), Image.Resampling.LANCZOS))


def to_u8(a: np.ndarray) -> np.ndarray:
    """``bytescale``: min-max to 0..255, rounded half up; uint8 input is returned unchanged."""
    if a.dtype == np.uint8:
        return a
    lo, hi = float(a.min()), float(a.max())
    scale = 255.0 / ((hi - lo) or 1.0)
    return (np.clip((a - lo) * scale, 0, 255) + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- stamps (§2.4, §2.5)
def stamp_radius(p: Params, margin: int) -> int:
    """R = L + ceil(t) + m: a stamp is (2R+1)^2 low-res pixels with the tail at (R, R)."""
    return p.paddle_length + math.ceil(p.paddle_thickness) + margin


def paddle_stamps(p: Params, margin: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-contrast image stamp and soft keep-out mask stamp of one paddle (§2.4).

    Returns two float64 [2R+1, 2R+1] arrays with values k/255; the paddle starts at the
    centre (R, R) and points along ``theta``.
    """
    aa = p.aa
    width = p.paddle_thickness * aa
    if width != int(width):
        raise ValueError(f"paddle_thickness x aa must be an integer, got {width}")
    r = stamp_radius(p, margin)
    n_hi, c = 2 * r * aa + 1, r * aa
    ey, ex = translate((c, c), theta, p.paddle_length * aa)
    canvas = Image.new("L", (n_hi, n_hi), 0)
    ImageDraw.Draw(canvas).line([(c, c), (ex, ey)], fill=255, width=round(width))
    line = np.asarray(canvas)
    image = lanczos_down(line, 2 * r + 1) / 255.0
    widened = dilate(line, kernel_offsets(disk(margin * aa))).astype(np.uint8)
    mask = lanczos_down(widened, 2 * r + 1) / 255.0
    return image, mask


def seed_kernel(p: Params, margin: int, mask_stamp: np.ndarray) -> np.ndarray:
    """Offsets [K, 2] of the oriented seed kernel K_theta (§2.5 step 2).

    The mask stamp is pasted with its tail at (L+m+1, L+m+1) into a (2(L+m)+1)^2 canvas; the
    kernel is the pixels equal to 1.0, anchored at the canvas centre (L+m, L+m).
    """
    half = p.paddle_length + margin
    size = 2 * half + 1
    r = stamp_radius(p, margin)
    canvas = np.zeros((size, size), dtype=np.uint8)
    top = half + 1 - r  # canvas row of stamp row 0
    u8 = np.rint(mask_stamp * 255).astype(np.uint8)
    s0, s1 = max(0, -top), min(u8.shape[0], size - top)
    canvas[top + s0 : top + s1, top + s0 : top + s1] = u8[s0:s1, s0:s1]
    ys, xs = np.nonzero(canvas == 255)
    return np.stack([ys - half, xs - half], axis=1)


def marker_image(size: int, centre: tuple[int, int], p: Params) -> np.ndarray:
    """[size, size] float64 image of one round marker at ``centre`` (§2.9 step 5)."""
    aa = p.aa
    n_hi = size * aa
    radius = p.marker_radius * aa
    yy, xx = np.ogrid[:n_hi, :n_hi]
    hi = ((yy - centre[0] * aa) ** 2 + (xx - centre[1] * aa) ** 2) <= radius * radius
    return lanczos_down(to_u8(hi.astype(np.float64)), size) / 255.0


def extension_offsets(radius: int) -> np.ndarray:
    """Candidate head offsets [K, 2] around a pivot at distance ``radius`` (§2.6 step 3).

    Points at angular steps of 360 / (2 pi r) degrees, floored, de-duplicated, sorted by
    (dy, dx). Offsets are exact for any integer pivot because no coordinate lies within 1e-9
    of an integer except the exact ones (checked), so floor(Q + x) = Q + floor(x).
    """
    step = 360.0 / (2 * math.pi * radius)
    degrees = np.arange(math.ceil(360.0 / step) + 1) * step
    angles = np.radians(degrees[degrees < 360.0])
    ys, xs = radius * np.sin(angles), radius * np.cos(angles)
    frac = np.abs(np.concatenate([ys, xs]) - np.rint(np.concatenate([ys, xs])))
    assert not np.any((frac > 0) & (frac < 1e-9)), "candidate offset too close to an integer"
    pairs = np.stack([np.floor(ys), np.floor(xs)], axis=1).astype(np.int64)
    return np.unique(pairs, axis=0)  # sorted by (dy, dx)


class Geometry:
    """Everything of one (parameters, margin) pair that depends only on an angle (§2.12 a).

    Orientations have integer ids: ``0..359`` are the seed angles theta = id - 180 degrees;
    ``360 + j`` is the direction psi_j of extension candidate j (its paddle is drawn along
    flip(psi_j)). Per id: unit-contrast image and mask stamps, the displacement to the next
    pivot, and the continuity weights of every candidate.
    """

    def __init__(self, p: Params, margin: int):
        self.p, self.m = p, margin
        self.size = p.resolution
        self.R = stamp_radius(p, margin)
        L = p.paddle_length
        self.offsets = extension_offsets(L + margin)  # [K, 2]
        self.psi = np.arctan2(self.offsets[:, 0], self.offsets[:, 1]).astype(np.float64)
        seed_angles = [math.radians(d) for d in range(-180, 180)]
        self.angle = np.array(seed_angles + self.psi.tolist())  # orientation of each id
        draw_angles = seed_angles + [flip(a) for a in self.psi.tolist()]
        stamps = [paddle_stamps(p, margin, a) for a in draw_angles]
        self.image = [s[0] for s in stamps]
        self.mask = [s[1] for s in stamps]
        step = L + 2 * margin  # pivot-to-pivot distance (§2.6 step 1)
        self.step_y = (step * np.sin(self.angle)).tolist()
        self.step_x = (step * np.cos(self.angle)).tolist()
        delta = np.abs(self.psi[None, :] - self.angle[:, None])
        delta = np.minimum(delta, 2 * math.pi - delta)
        self.weights = np.cos(np.minimum(p.continuity * delta, math.pi / 2)) ** 2  # [ids, K]
        self.kernels = [seed_kernel(p, margin, self.mask[i]) for i in range(360)]
        # flat offsets in an occupancy map padded by `margin` (see pathfinder_gen._Canvas)
        self.padded_width = self.size + 2 * margin
        to_flat = np.array([self.padded_width, 1])
        self.disk_flat = kernel_offsets(disk(margin)) @ to_flat
        self.cand_flat = self.offsets @ to_flat
        self._usable: dict[int, bool] = {}
        self._seed1: dict[int, np.ndarray] = {}
        # seed 1 is banned from bands of width 2 * seed_distance and from the frame (§2.7)
        band = 2 * p.seed_distance
        self.frame = np.zeros((self.size, self.size))
        self.frame[: p.padding] = self.frame[-p.padding :] = 1.0
        self.frame[:, : p.padding] = self.frame[:, -p.padding :] = 1.0
        self.banned1 = self.frame.copy()
        self.banned1[:band] = self.banned1[-band:] = 1.0
        self.banned1[:, :band] = self.banned1[:, -band:] = 1.0

    def usable(self, deg_id: int) -> bool:
        """False when a canvas pixel has no tap of K_theta inside the canvas (§2.5 quirk)."""
        if deg_id not in self._usable:
            inside = np.ones((self.size, self.size), dtype=bool)
            self._usable[deg_id] = bool(any_tap(inside, self.kernels[deg_id]).all())
        return self._usable[deg_id]

    def seed1_available(self, deg_id: int) -> np.ndarray:
        """Flat indices where the first target tail may go at angle id (fixed banned map)."""
        if deg_id not in self._seed1:
            hit = any_tap(self.banned1 > 0.3, self.kernels[deg_id])
            self._seed1[deg_id] = np.flatnonzero(~hit)
        return self._seed1[deg_id]


@cache
def geometry(p: Params, margin: int) -> Geometry:
    """The cached ``Geometry`` of ``(p, margin)`` (one per process)."""
    return Geometry(p, margin)
