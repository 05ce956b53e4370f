"""Block-sparse attention helpers shared by ``local``, ``sparse``, ``longformer``, ``bigbird``.

Nothing here builds an ``N x N`` tensor. A sequence is padded to a multiple of the block size
and viewed as ``nb`` blocks (``[B, H, N, Dh] -> [B, H, nb, b, Dh]``); each query block gathers
the few key blocks its pattern needs; one softmax runs over the concatenation of all the key
sets a method uses (window, global, summary, random), with a boolean ``allowed`` mask per set
that removes padded keys (the caller's and our own), keys outside the pattern, and keys that
already appear in another set (so none is counted twice). Costs are ``O(N * keys per query)``.

The block layout follows the "blockified" BigBird attention (Zaheer et al. 2020) and the
blocked local attention of LRA (Tay et al. 2021); the helpers are written from those
descriptions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from models.kernels import (  # check_int re-exported: the block methods' option check
    check_int,
    softmax_over_key_sets,
)


def num_blocks(n: int, block: int) -> int:
    """Number of blocks of size ``block`` covering ``n`` positions (the last may be partial)."""
    return math.ceil(n / block)


def pad_to_multiple(x: Tensor, block: int, dim: int, value: float | bool = 0) -> Tensor:
    """Pad ``x`` at the end of ``dim`` with ``value`` up to a multiple of ``block``."""
    extra = num_blocks(x.shape[dim], block) * block - x.shape[dim]
    if extra == 0:
        return x
    pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + [0, extra]
    return F.pad(x, pad, value=value)


def to_blocks(x: Tensor, block: int) -> Tensor:
    """[B, H, N, Dh] -> [B, H, nb, b, Dh], zero-padding N up to nb * b."""
    x = pad_to_multiple(x, block, dim=2)
    b, h, n, d = x.shape
    return x.view(b, h, n // block, block, d)


def from_blocks(x: Tensor, n: int) -> Tensor:
    """[B, H, nb, b, Dh] -> [B, H, n, Dh], dropping the internal padding past ``n``."""
    b, h, nb, blk, d = x.shape
    return x.reshape(b, h, nb * blk, d)[:, :, :n]


def mask_blocks(mask: Tensor, block: int) -> Tensor:
    """Key mask [B, N] bool (True = real) -> [B, 1, nb, b]; internal padding is False."""
    mask = pad_to_multiple(mask, block, dim=1, value=False)
    return mask.view(mask.shape[0], 1, -1, block)


def neighbour_blocks(
    nb: int, block: int, offsets: Sequence[int], device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Key blocks at ``offsets`` from each query block, and their key positions.

    Returns:
        idx [nb, M] long: block ``q + offsets[m]``, clamped into ``[0, nb)`` (so it can index);
        pos [nb, M * b] long: the key positions those blocks cover, ``-1`` where the block is
        out of range (a clamped duplicate that callers must mask: ``pos >= 0``).
    """
    q = torch.arange(nb, device=device)[:, None]
    raw = q + torch.tensor(list(offsets), device=device)[None, :]  # [nb, M]
    inside = (raw >= 0) & (raw < nb)
    pos = raw[..., None] * block + torch.arange(block, device=device)  # [nb, M, b]
    pos = pos.masked_fill(~inside[..., None], -1)
    return raw.clamp(0, nb - 1), pos.flatten(1)


def gather_blocks(xb: Tensor, idx: Tensor) -> Tensor:
    """Gather key blocks per query block.

    Args:
        xb: [B, H', nb, b, ...] blocked keys, values or masks (H' = H, or 1 with ``idx`` 2-D).
        idx: [nb, M] block ids shared by all heads, or [H, nb, M] per head.

    Returns:
        [B, H*, nb, M * b, ...]: the M blocks each query block reads, concatenated.
    """
    if idx.dim() == 2:
        out = xb[:, :, idx]
    else:
        heads = idx.shape[0]
        xb = xb.expand(xb.shape[0], heads, *xb.shape[2:])
        out = xb[:, torch.arange(heads, device=idx.device)[:, None, None], idx]
    return out.flatten(3, 4)


def full_rows(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, dropout: float = 0.0) -> Tensor:
    """Full attention of a few (global) queries over every key: O(g * N).

    q [B, H, g, Dh] (already scaled), k, v [B, H, N, Dh], mask [B, N] -> [B, H, g, Dh].
    """
    (probs,), has_key = softmax_over_key_sets(
        [q @ k.transpose(-2, -1)], [mask[:, None, None, :]], dropout
    )
    return (probs @ v).masked_fill(~has_key, 0.0)


__all__ = [
    "check_int",
    "from_blocks",
    "full_rows",
    "gather_blocks",
    "mask_blocks",
    "neighbour_blocks",
    "num_blocks",
    "pad_to_multiple",
    "to_blocks",
]
