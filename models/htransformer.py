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
all levels share one softmax: going from the coarsest level down, we carry ``sum exp(s - c)
V`` and ``sum exp(s - c)`` per query row under one running row shift ``c`` (the largest score
seen so far), prolonging (repeating) coarse query rows to their ``r`` fine queries (the
paper's interpolation) and rescaling them in one product, added inside the next level's
``exp(s - c) V`` product. Each level's group sums are built from the level below (pairs of
groups), so coarsening costs ``O(n)`` in all; memory and time are ``O(n * b)`` (the level
sizes halve going up). Because ``q_bar . k_bar`` is the mean of ``q_i . k_j`` over the two
groups, the method equals softmax attention with each score
replaced by its group-pair average at its level; with one block (``b >= n``), or with one
level (``levels=1``) and ``2 b >= n``, nothing is coarsened and it is full softmax attention.

``levels``: ``None`` = as many as needed to cover the whole sequence; an int ``L`` stops the
hierarchy at segments of ``b * 2^L`` (keys beyond are not attended; ``L = 0`` is block-local).

Departure: the paper's finest level also holds the super/sub-diagonal blocks at full
resolution (tri-diagonal), overlapping the level above; we use the non-overlapping dyadic
partition, so a neighbouring block across a segment border is read coarsened.
Padded keys count 0 in every group; padded queries are left out of the query averages, so
appended padding never changes real outputs. A batch without padding (at a length of
``b * 2^levels``) skips the masking: every group is full, so the means' ``1 / r^2`` is folded
into the score scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import check_int, pad_to_multiple
from models.kernels import may_have_padding


def pyramid(x: Tensor, depth: int) -> list[Tensor]:
    """``x`` and its sums over groups of 2, 4, ..., ``2^(depth-1)`` consecutive positions, each
    level built from the one below: x [..., P, Dh] (zero at padded positions) -> ``depth``
    tensors [..., P / 2^i, Dh]."""
    sums = [x]
    for _ in range(depth - 1):
        s = sums[-1]
        sums.append(s.unflatten(-2, (s.shape[-2] // 2, 2)).sum(-2))
    return sums


def swap_halves(x: Tensor, dim: int) -> Tensor:
    """Swap blocks 2i and 2i+1 along ``dim`` (the other half of each segment); a copy."""
    return x.unflatten(dim, (x.shape[dim] // 2, 2)).flip(dim + 1).flatten(dim, dim + 1)


def prolong_scaled(x: Tensor, scale: Tensor) -> Tensor:
    """Each coarse row repeated for its ``f`` fine rows and multiplied by the fine row's
    factor, in one product: x [..., P, D], scale [..., f * P, 1] -> [..., f * P, D]."""
    fine = x.unsqueeze(-2) * scale.unflatten(-2, (x.shape[-2], -1))  # [..., P, f, D]
    return fine.flatten(-3, -2)


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
        # contiguous [B, H, P, Dh] copies, so that every block view below is free
        q, k, v = (
            pad_to_multiple(t.to(wide, memory_format=torch.contiguous_format), b * 2**top, dim=2)
            for t in (q, k, v)
        )
        real = pad_to_multiple(mask, b * 2**top, dim=1, value=False)[:, None, :, None]
        padded = may_have_padding(real)
        if padded:  # padded positions hold 0 at every level (group sums over real ones only)
            q, k, v = (t * real.to(wide) for t in (q, k, v))
        depth = max(top, 1)
        qs, ks, vs = (pyramid(t, depth) for t in (q, k, v))
        counts = pyramid(real.to(wide), depth) if padded else [None] * depth
        state: tuple[Tensor, Tensor, Tensor] | None = None  # shift, numerator, denominator
        for level in range(top, -1, -1):  # coarsest first; level 0: the diagonal blocks
            # groups of r = 2^(level-1) positions: levels 1 and 0 both use the positions
            i = level - 1 if level > 1 else 0
            state = self.level_partial(level, (qs[i], ks[i], vs[i]), counts[i], b, p, state)
            if i:  # each level's sums are freed once used (coarsest is last)
                for pyr in (qs, ks, vs, counts):
                    pyr.pop()
        _, num, den = state
        out = num / den.masked_fill(den == 0, 1.0)  # den >= 1 unless a row has no key
        return out[:, :, :n].to(dtype)

    def level_partial(
        self,
        level: int,
        sums: tuple[Tensor, Tensor, Tensor],
        count: Tensor | None,
        b: int,
        p: float,
        coarser: tuple[Tensor, Tensor, Tensor] | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One level's block softmax, merged with the coarser levels' partial sums.

        sums: (q, k, v) summed over groups of ``r`` positions, each [B, H, P, Dh] (``r = 1`` at
        levels 0 and 1; 0 at padding); count [B, 1, P, 1] real positions per group, or None
        without padding (then every group holds ``r``); coarser: (row shift [B, H, P', 1],
        ``sum exp(s - shift) v`` [B, H, P', Dh], ``sum exp(s - shift) count`` [B, H, P', 1])
        with ``P' = P / 2`` (``P`` at level 0), or None. Returns the same three over ``P`` rows,
        with one shift per row shared by every level so far.
        """
        qs, ks, vs = sums
        (bsz, heads, size, dh), nb = qs.shape, qs.shape[2] // b
        r = 2 ** (level - 1) if level else 1
        scale = self.head_dim**-0.5
        if count is not None and r > 1:  # means over the real positions of each group
            qs, ks = (t / count.clamp_min(1.0) for t in (qs, ks))
        elif count is None:  # every group is full: the means' 1 / r^2 goes into the scale
            scale = scale / r**2
        blocks = [t.view(bsz, heads, nb, b, dh) for t in (qs, ks, vs)]
        weight = None if count is None else count.view(bsz, 1, nb, b)
        if level:  # the other half of each segment: keys and values of the sibling block
            blocks[1:] = (swap_halves(t, 2) for t in blocks[1:])
            weight = None if weight is None else swap_halves(weight, 2)
        qb, kb, vb = (t.flatten(0, 2) for t in blocks)  # [B * H * nb, b, Dh]
        # Under autocast the products run in bf16/fp16; the softmax pieces stay in the (>=
        # fp32) dtype of the sums, as every level's exponentials are merged along the row.
        scores = torch.baddbmm(qb.new_zeros(()), qb, kb.transpose(-2, -1), beta=0, alpha=scale)
        scores = scores.to(qs.dtype).view(bsz, heads, nb, b, b)
        if weight is not None:
            scores = scores.masked_fill(weight[:, :, :, None, :] == 0, torch.finfo(qs.dtype).min)
        # any shift is exact: the row maximum over this level and the coarser ones (detached)
        shift = scores.amax(-1).detach().view(bsz, heads, size, 1)
        if coarser is not None:
            old = coarser[0].repeat_interleave(size // coarser[0].shape[2], dim=2)
            shift = torch.maximum(shift, old)
        # a key without real positions has v = 0 and weight 0, so its exp(min - shift), 1 in
        # a row without any real key, adds nothing to either sum: no second mask needed
        w = (scores - shift.view(bsz, heads, nb, b, 1)).exp()  # [B, H, nb, b, b]
        # sum_j w_ij count_j, without a [.., b, b] product
        den = w.sum(-1, keepdim=True) * r if weight is None else w @ weight[..., None]
        den = den.view(bsz, heads, size, 1)
        dropped = F.dropout(w, p=p).flatten(0, 2)
        if coarser is None:
            num = torch.bmm(dropped, vb)
        else:  # the coarser rows, rescaled to the new shift, added inside the product
            rescale = (old - shift).exp()
            num = torch.baddbmm(prolong_scaled(coarser[1], rescale).view_as(vb), dropped, vb)
            den = den + prolong_scaled(coarser[2], rescale)
        return shift, num.to(qs.dtype).view(bsz, heads, size, dh), den

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, block_size={self.block_size}, levels={self.levels}"
