"""Local window plus random keys whose probability decays with distance (a fixed pattern).

Not from a paper: a sparse pattern in the spirit of BigBird's window + random keys (Zaheer et
al. 2020), with the random keys drawn near-to-far. Query ``i`` attends, in one softmax, to

* its window: keys ``j`` with ``|i - j| <= window``;
* ``random_keys`` random keys ``j = i +- d``, the distance ``d > window`` drawn from a
  power law ``P(d > t) = ((window + 1) / t)^(decay - 1)`` (so the density falls like
  ``d^-decay``), the sign by a fair coin; a key beyond the sequence's last real token is taken
  on the other side, and dropped if that is outside too; duplicates are dropped.

The draws are a hash of ``(seed, i, draw)`` (splitmix64), with ``seed`` drawn from torch's RNG
when the layer is built and kept in the state_dict: the pattern is fixed in training and
evaluation, differs per layer, shared by the heads, and depends only on the query position and
on where the real tokens end, so appended padding changes nothing. The window is
computed blockwise (blocks of ``b = window``, each reading its own and the two neighbouring
key blocks, as ``longformer``) and the random keys are gathered per query
(``[B, H, N, random_keys, Dh]``), one softmax over both: ``O(N (w + r))`` time and memory,
never ``N x N``. With ``window >= length - 1`` every key is in the window and the random keys
fall outside the sequence: full softmax attention. Padded keys are masked.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import (
    from_blocks,
    gather_blocks,
    mask_blocks,
    neighbour_blocks,
    pad_to_multiple,
    to_blocks,
)
from models.kernels import check_int, check_positive_float, softmax_over_key_sets


def to_blocks_rows(x: Tensor, block: int, value: float | bool = 0) -> Tensor:
    """[B, H, N, K] -> [B, H, nb, b, K], padding N up to nb * b with ``value``."""
    x = pad_to_multiple(x, block, dim=2, value=value)
    return x.view(*x.shape[:2], -1, block, x.shape[-1])


_C1 = 0xBF58476D1CE4E5B9 - (1 << 64)  # splitmix64 constants as signed int64
_C2 = 0x94D049BB133111EB - (1 << 64)
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)


def _shr(x: Tensor, s: int) -> Tensor:
    """Logical right shift of int64."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def hash_uniform(keys: Tensor) -> Tensor:
    """Uniform floats in (0, 1), float64, one per int64 key (splitmix64 finaliser)."""
    x = keys * _GOLDEN
    x = (x ^ _shr(x, 30)) * _C1
    x = (x ^ _shr(x, 27)) * _C2
    x = x ^ _shr(x, 31)
    return (_shr(x, 11).double() + 0.5) / float(1 << 53)


@register("random_decay")
class RandomDecayAttention(ProjectedAttention):
    """Softmax over a local window plus distance-decaying random keys, gathered.

    Options:
        window: one-sided window radius ``w`` (int >= 0; default 32, i.e. 65 keys).
        random_keys: random keys per query ``r`` (int >= 0; default 16).
        decay: power-law exponent of the distance density (number > 1; default 2).
    """

    exact = False
    complexity = "n*(w+r)"
    test_options = {"window": 4, "random_keys": 4}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        window: int = 32,
        random_keys: int = 16,
        decay: float = 2.0,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.window = check_int("window", window, 0)
        self.random_keys = check_int("random_keys", random_keys, 0)
        self.decay = check_positive_float("decay", decay)
        if self.decay <= 1:
            raise ValueError(f"option decay must be a number > 1, got {decay!r}")
        self.register_buffer("seed", torch.randint(0, 2**31 - 1, ()))

    @torch.compiler.disable  # integer hashing: torch 2.13's CPU inductor fails to compile it
    def random_pattern(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Random key indices [B, N, r] (clamped into range) and their allowed flags [B, N, r]."""
        b, n = mask.shape
        dev = mask.device
        pos = torch.arange(n, device=dev)
        end = torch.where(mask, pos + 1, 0).amax(-1)[:, None, None]  # [B, 1, 1]
        draw = pos[:, None] * self.random_keys + torch.arange(self.random_keys, device=dev)
        base = self.seed.to(dev) * 1_000_003 + 2 * draw  # [N, r]
        u, coin = hash_uniform(base), hash_uniform(base + 1)
        tail = u.pow(-1.0 / (self.decay - 1)).clamp(max=float(n + 1))
        dist = ((self.window + 1) * tail).floor().clamp(max=float(n + 1)).long()
        sign = torch.where(coin < 0.5, -1, 1)
        first = (pos[:, None] + sign * dist).expand(b, n, -1)
        other = (pos[:, None] - sign * dist).expand(b, n, -1)
        ok_first = (first >= 0) & (first < end)
        rnd = torch.where(ok_first, first, other)
        ok = ok_first | ((other >= 0) & (other < end))
        earlier = (rnd[..., :, None] == rnd[..., None, :]) & ok[..., None, :]
        ok = ok & ~torch.tril(earlier, diagonal=-1).any(-1)  # drop duplicates
        rnd = rnd.clamp(0, n - 1)
        return rnd, ok & mask.gather(1, rnd.flatten(1)).view_as(rnd)

    def pattern(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The whole pattern, per query: key indices and allowed flags, both [B, N, 2w'+1+r]
        (window first, ``w' = min(window, N - 1)``). For inspection and tests; ``attend``
        computes the window blockwise."""
        b, n = mask.shape
        pos = torch.arange(n, device=mask.device)
        w = min(self.window, n - 1)
        win = (pos[:, None] + torch.arange(-w, w + 1, device=mask.device)).expand(b, n, -1)
        inside = (win >= 0) & (win < n)
        win = win.clamp(0, n - 1)
        rnd, ok = self.random_pattern(mask)
        win_ok = inside & mask.gather(1, win.flatten(1)).view_as(win)
        return torch.cat([win, rnd], -1), torch.cat([win_ok, ok], -1)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        bsz, h, n, dh = q.shape
        q = q * dh**-0.5
        # window: blocks of b >= window, each query block reads its own and both neighbours
        b = min(max(self.window, 1), n)
        qb, kb, vb = (to_blocks(t, b) for t in (q, k, v))
        nb = qb.shape[2]
        idx, kpos = neighbour_blocks(nb, b, (-1, 0, 1), q.device)  # [nb, 3], [nb, 3b]
        kw, vw = gather_blocks(kb, idx), gather_blocks(vb, idx)  # [B, H, nb, 3b, Dh]
        qpos = torch.arange(nb * b, device=q.device).view(nb, b, 1)
        near = (kpos[:, None, :] - qpos).abs() <= self.window
        near = near & (kpos[:, None, :] >= 0)
        scores = [qb @ kw.transpose(-2, -1)]  # [B, H, nb, b, 3b]
        allowed = [near & gather_blocks(mask_blocks(mask, b), idx)[:, :, :, None, :]]
        # random keys: gathered per query
        rnd, ok = self.random_pattern(mask)  # [B, N, r]
        r = rnd.shape[-1]
        flat = rnd.reshape(bsz, 1, n * r, 1).expand(bsz, h, n * r, dh)
        kr = k.gather(2, flat).view(bsz, h, n, r, dh)
        vr = v.gather(2, flat).view(bsz, h, n, r, dh)
        scores.append(to_blocks_rows(torch.einsum("bhnd,bhnrd->bhnr", q, kr), b))
        allowed.append(to_blocks_rows(ok[:, None], b, False))
        probs, has_key = softmax_over_key_sets(scores, allowed, dropout_p(self))
        out = probs[0] @ vw + to_blocks_rows(
            torch.einsum("bhnr,bhnrd->bhnd", from_blocks(probs[1], n), vr), b
        )
        return from_blocks(out.masked_fill(~has_key, 0.0), n)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, window={self.window}, random_keys={self.random_keys}, "
            f"decay={self.decay}"
        )
