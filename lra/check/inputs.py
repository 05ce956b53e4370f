"""Shared inputs and dense references for attention tests and conformance checks.

Inputs: ``x`` [B, N, D] or ``q, k, v`` [B, H, N, Dh] with a padding mask [B, N] (True = real)
whose item 1 has a padded gap in the middle and a padded tail (item 0 is all real), and the
same batch with garbage appended as padding. References: masked softmax attention written out
densely (over an optional pattern), through a module's own projections, and normalised kernel
attention. Everything runs in float64 unless asked otherwise.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from models import Attention, attention_class, build_attention

HEADS, HEAD_DIM = 2, 8
DIM = HEADS * HEAD_DIM  # the model width of every test input


# --------------------------------------------------------------------------- running
@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one CPU thread, then restore the setting. Test tensors are tiny: more
    intra-op threads only add overhead, and far more on a machine that is busy otherwise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- inputs
def padding_mask(
    b: int, n: int, tail: int = 6, gaps: Sequence[tuple[int, int]] = ((3, 5),)
) -> Tensor:
    """[b, n] bool: all real, except item 1 (if any): ``tail`` padded last positions and padded
    ``[start, stop)`` gaps."""
    mask = torch.ones(b, n, dtype=torch.bool)
    if b > 1:
        if tail:
            mask[1, n - tail :] = False
        for start, stop in gaps:
            mask[1, start:stop] = False
    return mask


def inputs(
    n: int,
    b: int = 2,
    dim: int = DIM,
    tail: int = 6,
    gaps: Sequence[tuple[int, int]] = ((3, 5),),
    seed: int = 1,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """x [b, n, dim] ~ N(0, 1) and :func:`padding_mask` [b, n]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, dim, generator=g, dtype=torch.float64).to(dtype)
    return x, padding_mask(b, n, tail, gaps)


def qkv(
    n: int, b: int = 2, seed: int = 0, scale: float = 1.0, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """q, k, v [b, HEADS, n, HEAD_DIM] ~ N(0, scale^2); mask [b, n] (:func:`padding_mask`)."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (
        (torch.randn(b, HEADS, n, HEAD_DIM, generator=g, dtype=torch.float64) * scale).to(dtype)
        for _ in range(3)
    )
    return q, k, v, padding_mask(b, n)


def with_garbage_padding(
    x: Tensor, mask: Tensor, extra: int, seed: int = 2, scale: float = 10.0
) -> tuple[Tensor, Tensor]:
    """The batch with ``extra`` padded positions appended, and garbage in every padded slot.

    x [B, N, D], mask [B, N] -> x' [B, N + extra, D], mask' [B, N + extra]: real positions keep
    their values; padded ones (old and new) hold ``scale`` x N(0, 1) noise.
    """
    g = torch.Generator().manual_seed(seed)
    b, n, d = x.shape
    garbage = (scale * torch.randn(b, n + extra, d, generator=g, dtype=torch.float64)).to(x)
    mask_long = torch.cat([mask, mask.new_zeros(b, extra)], dim=1)
    x_long = torch.cat([x, garbage[:, n:]], dim=1)
    return torch.where(mask_long[..., None], x_long, garbage), mask_long


def real_rows(y: Tensor, mask: Tensor) -> Tensor:
    """Outputs of real queries only: [B, H, N, Dh] -> [R, Dh]."""
    return y.transpose(1, 2)[mask]


# --------------------------------------------------------------------------- methods
def make(method: str | type[Attention], seed: int = 0, max_len: int = 64, **options) -> Attention:
    """A method at ``DIM`` and ``HEADS``, float64, eval mode, built after
    ``torch.manual_seed(seed)``; ``needs_max_len`` methods get ``max_len`` unless given."""
    torch.manual_seed(seed)
    if attention_class(method).needs_max_len:
        options.setdefault("max_len", max_len)
    return build_attention(method, DIM, HEADS, **options).double().eval()


# --------------------------------------------------------------------------- references
def softmax_over(scores: Tensor, allowed: Tensor, v: Tensor) -> Tensor:
    """Dense masked softmax: scores [..., N, K], allowed (broadcastable bool), v [..., K, Dh]."""
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


def softmax_reference(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor, pattern: Tensor | None = None
) -> Tensor:
    """softmax(q k^T / sqrt(Dh)) v over real keys (and ``pattern``), written out densely.

    q, k, v [B, H, N, Dh], mask [B, N]; pattern [N, N], [H, N, N] or [B, H, N, N] bool
    (True = query may attend to key) -> [B, H, N, Dh]. Rows without any key give NaN.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = mask[:, None, None, :]
    if pattern is not None:
        allowed = allowed & pattern
    return softmax_over(scores, allowed, v)


def projected_softmax_reference(attn: Attention, x: Tensor, mask: Tensor) -> Tensor:
    """Full softmax attention through the module's own ``to_qkv`` and ``to_out``, densely.

    x [B, N, D], mask [B, N] -> [B, N, D].
    """
    b, n, _ = x.shape
    h, dh = attn.heads, attn.head_dim
    q, k, v = (t.reshape(b, n, h, dh).permute(0, 2, 1, 3) for t in attn.to_qkv(x).chunk(3, dim=-1))
    out = softmax_reference(q, k, v, mask)
    return attn.to_out(out.permute(0, 2, 1, 3).reshape(b, n, h * dh))


def kernel_reference(phi_q: Tensor, phi_k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Dense normalised kernel attention: A = phi_q phi_k^T over real keys, rows sum to 1.

    phi_q, phi_k [B, H, N, M], v [B, H, N, Dh], mask [B, N] -> [B, H, N, Dh].
    """
    a = (phi_q @ phi_k.transpose(-2, -1)) * mask[:, None, None, :]
    return (a / a.sum(-1, keepdim=True)) @ v


__all__ = [
    "DIM",
    "HEADS",
    "HEAD_DIM",
    "inputs",
    "kernel_reference",
    "make",
    "one_thread",
    "padding_mask",
    "projected_softmax_reference",
    "qkv",
    "real_rows",
    "softmax_over",
    "softmax_reference",
    "with_garbage_padding",
]
