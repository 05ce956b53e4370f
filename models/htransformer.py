"""Hierarchical attention, H-Transformer-1D (Zhu & Soricut 2021, "H-Transformer-1D: Fast
One-Dimensional Hierarchical Attention for Sequences").

The attention matrix is split as a hierarchical (H-) matrix over dyadic segments anchored at
position 0, with block size ``b`` (``block_size``):

* level 0: full attention inside each diagonal block of ``b`` positions;
* level ``l >= 1``: inside each segment of ``b * 2^l`` positions, the two halves attend to each
  other (the two off-diagonal blocks) at resolution ``r = 2^(l-1)``: queries and keys are
  averaged over groups of ``r`` real positions (restriction), values SUMMED over the group
  (as the paper's coarsening of V), and each coarse key is weighted by its number of real
  positions, so every coarse block is ``b x b``.

Every (query, key) pair falls in exactly one level (the smallest segment holding both), and
all levels share one softmax: per level we keep the row maximum, ``sum exp(s) V`` and
``sum exp(s)``, and merge them from the coarsest level down, prolonging (repeating) coarse
query rows to their ``r`` fine queries (the paper's interpolation). Each level's group sums
are built from the level below (pairs of groups), so coarsening costs ``O(n)`` in all; memory
and time are ``O(n * b)`` (the level sizes halve going up). Because ``q_bar . k_bar`` is the mean of
``q_i . k_j`` over the two groups, the method equals softmax attention with each score
replaced by its group-pair average at its level; with one block (``b >= n``), or with one
level (``levels=1``) and ``2 b >= n``, nothing is coarsened and it is full softmax attention.

``levels``: ``None`` = as many as needed to cover the whole sequence; an int ``L`` stops the
hierarchy at segments of ``b * 2^L`` (keys beyond are not attended; ``L = 0`` is block-local).

Departure: the paper's finest level also holds the super/sub-diagonal blocks at full
resolution (tri-diagonal), overlapping the level above; we use the non-overlapping dyadic
partition, so a neighbouring block across a segment border is read coarsened.
Padded keys count 0 in every group; padded queries are left out of the query averages, so
appended padding never changes real outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import check_int, pad_to_multiple

Partial = tuple[Tensor, Tensor, Tensor]  # row max [.., P, 1], sum exp(s) v [.., P, Dh], sum exp(s)


def pyramid(x: Tensor, depth: int) -> list[Tensor]:
    """``x`` and its sums over groups of 2, 4, ..., ``2^(depth-1)`` consecutive positions, each
    level built from the one below: x [B, H, P, Dh] (or [B, 1, P, 1]; zero at padded
    positions) -> ``depth`` tensors [B, H, P / 2^i, Dh]."""
    sums = [x]
    for _ in range(depth - 1):
        s = sums[-1]
        sums.append(s.view(s.shape[0], s.shape[1], s.shape[2] // 2, 2, s.shape[3]).sum(3))
    return sums


def block_partial(q: Tensor, k: Tensor, v: Tensor, count: Tensor, p: float) -> Partial:
    """Softmax pieces of query blocks against key blocks.

    q [B, H, nb, b, Dh] (scaled), k [B, H, nb, b, Dh] (mean keys), v [B, H, nb, b, Dh] (summed
    values, 0 at keys without real positions), count [B, 1, nb, 1, b] (real positions behind
    each key, 0 = none) -> row max
    [B, H, nb*b, 1], numerator ``sum exp(s) v`` [B, H, nb*b, Dh], denominator
    ``sum exp(s) count`` [B, H, nb*b, 1].
    """
    # Under autocast the matmuls run in bf16/fp16; the softmax pieces stay in q's (>= fp32)
    # dtype, as the levels' exponentials and sums are merged across the whole row.
    scores = (q @ k.transpose(-2, -1)).to(q.dtype)
    scores = scores.masked_fill(count == 0, torch.finfo(q.dtype).min)
    m = scores.amax(-1, keepdim=True).detach()  # any shift is exact; detached saves memory
    # A key without real positions has v = 0 and count = 0, so its weight, exp(min - m) = 0
    # or 1 in a row without any real key, adds nothing to either sum: no second mask needed.
    w = (scores - m).exp()  # [B, H, nb, b, b]
    num = (F.dropout(w, p=p) @ v).to(q.dtype)
    den = w @ count.transpose(-2, -1)  # sum_j w_ij count_j, without a [.., b, b] product
    return m.flatten(2, 3), num.flatten(2, 3), den.flatten(2, 3)


def merge(a: Partial, c: Partial) -> Partial:
    """Merge two partial softmaxes over disjoint key sets of the same query rows."""
    m = torch.maximum(a[0], c[0])
    sa, sc = (a[0] - m).exp(), (c[0] - m).exp()
    return m, a[1] * sa + c[1] * sc, a[2] * sa + c[2] * sc


def prolong(part: Partial, factor: int) -> Partial:
    """Repeat each coarse query row ``factor`` times (to the next finer level)."""
    return tuple(t.repeat_interleave(factor, dim=2) for t in part)  # type: ignore[return-value]


@register("htransformer")
class HTransformerAttention(ProjectedAttention):
    """Hierarchical (H-matrix) attention: fine diagonal blocks, coarsened far blocks, O(n).

    Options:
        block_size: ``b``, the diagonal block and the coarse block size (int >= 1; default 32).
        levels: coarse levels above the diagonal blocks (int >= 0), or null for all needed.
    """

    exact = False
    complexity = "n"
    test_options = {"block_size": 8}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        block_size: int = 32,
        levels: int | None = None,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.block_size = check_int("block_size", block_size, 1)
        self.levels = None if levels is None else check_int("levels", levels, 0)

    def num_levels(self, n: int) -> int:
        """Coarse levels used for length ``n``."""
        b = min(self.block_size, n)
        needed = math.ceil(math.log2(math.ceil(n / b))) if n > b else 0
        return needed if self.levels is None else min(self.levels, needed)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n, dtype, p = q.shape[2], q.dtype, dropout_p(self)
        b, top = min(self.block_size, n), self.num_levels(n)
        wide = torch.promote_types(dtype, torch.float32)
        q, k, v = (pad_to_multiple(t.to(wide), b * 2**top, dim=2) for t in (q, k, v))
        real = pad_to_multiple(mask, b * 2**top, dim=1, value=False)[:, None, :, None].to(wide)
        # padded positions hold 0 at every level (group sums over real positions only; and
        # block_partial relies on v = 0 behind keys without real positions); q is scaled too
        q, k, v = q * (real * self.head_dim**-0.5), k * real, v * real
        size = q.shape[2]
        merged: Partial | None = None
        qs, ks, vs, counts = (pyramid(t, top) for t in (q, k, v, real))
        for level in range(top, 0, -1):  # coarsest first; groups of r = 2^(level-1)
            # pop: each level's sums are freed once used (coarsest is last)
            qsum, ksum, vsum, count = qs.pop(), ks.pop(), vs.pop(), counts.pop()
            # means of real positions; groups of one (level 1) are their own mean (count 0 or
            # 1, sums already 0 at padding): no division, no copy
            qc, kc = (
                (qsum, ksum) if level == 1 else (t / count.clamp_min(1.0) for t in (qsum, ksum))
            )
            nb = size // (2 ** (level - 1) * b)
            sib = torch.arange(nb, device=q.device) ^ 1  # the other half of the segment
            qb, kb, vb = (t.view(t.shape[0], t.shape[1], nb, b, -1) for t in (qc, kc, vsum))
            weight = count.view(count.shape[0], 1, nb, b)[:, :, sib, None, :]
            part = block_partial(qb, kb[:, :, sib], vb[:, :, sib], weight, p)
            merged = part if merged is None else merge(prolong(merged, 2), part)
        nb = size // b
        weight = real.view(real.shape[0], 1, nb, 1, b)
        blocks = (t.view(t.shape[0], t.shape[1], nb, b, -1) for t in (q, k, v))
        part = block_partial(*blocks, weight, p)
        _, num, den = part if merged is None else merge(merged, part)
        out = num / den.masked_fill(den == 0, 1.0)  # den >= 1 unless a row has no key
        return out[:, :, :n].to(dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, block_size={self.block_size}, levels={self.levels}"
