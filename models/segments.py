"""Segment recurrence with relative positions, shared by ``xl`` and ``compressive``.

Transformer-XL (Dai et al. 2019) cuts the sequence into fixed-length segments of ``L`` tokens,
processes them in order and lets every layer of segment ``s`` attend to the cached hidden
states of the previous ``m`` positions (the memory, with no gradient into it) besides its own
segment, with relative positional scores

    A_ij = q_i.k_j + q_i.W_R R_{i-j} + u.k_j + v.W_R R_{i-j}         (Dai et al. 2019, §3.3)

(``R`` a fixed sinusoid table, ``W_R`` learned, ``u``, ``v`` learned per head), scaled by
``1/sqrt(Dh)``.

**One pass instead of a loop.** Layer ``l``'s cached state for segment ``s - 1`` is exactly
layer ``l``'s input at those positions, and it depends only on earlier segments. So running
every layer over the whole sequence with this block-recurrent pattern (segment ``s``'s queries
see ``[stop_grad(inputs at sL-m .. sL-1); inputs of segment s]``) computes the same outputs and
the same gradients as the segment-by-segment loop with a detached cache;
``tests/test_segment_recurrent.py`` checks that against an explicit loop over segments.
The backbone therefore needs no special path, only the pooling rule of
``segment_recurrent`` methods (see ``models.backbone.Encoder``).

Within a segment attention is bidirectional (an encoder for classification; XL's causal mask
is a language-model choice). Cost ``O(N * (L + m))``; nothing ``N x N`` is built.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ProjectedAttention, dropout_p
from models.blocks import check_int, pad_to_multiple


def relative_sinusoid(distances: Tensor, dim: int) -> Tensor:
    """Sinusoid table of (possibly negative) distances [P] -> [P, dim]: ``[sin | cos]`` as XL."""
    inv_freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float64, device=distances.device)
        * (-math.log(10000.0) / dim)
    )
    angles = distances.double()[:, None] * inv_freq[None, :]
    table = torch.cat([angles.sin(), angles.cos()], dim=-1)[:, :dim]
    return table


def softmax_dtype(dtype: torch.dtype) -> torch.dtype:
    """Softmax in at least float32 (bf16/fp16 scores are upcast, float64 stays)."""
    return torch.promote_types(dtype, torch.float32)


def windows(t: Tensor, mask: Tensor, starts: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Per segment, the ``width`` positions from ``starts[s]`` on.

    Args:
        t: [B, N, D] states; mask: [B, N] bool (True = real); starts: [S] long (may be < 0).

    Returns:
        [B, S, width, D] states and [B, S, width] mask; positions outside ``[0, N)`` are masked.
    """
    pos = starts[:, None] + torch.arange(width, device=t.device)[None, :]  # [S, width]
    inside = (pos >= 0) & (pos < t.shape[1])
    idx = pos.clamp(0, max(t.shape[1] - 1, 0))
    return t[:, idx], mask[:, idx] & inside


class SegmentRecurrentAttention(ProjectedAttention):
    """Attention of each segment over ``[context; segment]`` with XL's relative positions.

    Subclasses define the extra context per segment (:meth:`context`: memory, compressed
    memory); this class does the segmenting, the relative scores and the softmax.

    Options:
        segment_len: tokens per segment ``L`` (int >= 1). A segment at least as long as the
            input (with an empty context) is one full bidirectional attention.
        mem_len: cached positions ``m`` before each segment (int >= 0; 0 = no memory).
    """

    segment_recurrent = True

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        segment_len: int = 256,
        mem_len: int = 256,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.segment_len = check_int("segment_len", segment_len, 1)
        self.mem_len = check_int("mem_len", mem_len, 0)
        self.r_proj = nn.Linear(dim, self.qkv_dim, bias=False)  # W_{k,R}
        self.u = nn.Parameter(torch.randn(heads, self.head_dim) * 0.02)  # content bias
        self.v = nn.Parameter(torch.randn(heads, self.head_dim) * 0.02)  # position bias

    # ------------------------------------------------------------------ hooks for subclasses
    def context(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Extra keys per segment: x [B, S*L, D] (already detached), mask [B, S*L] ->
        [B, S, E, D] states and [B, S, E] mask, oldest first (E may be 0)."""
        return self.memory(x, mask)

    def no_context(self, x: Tensor) -> Tensor:
        """Empty context [B, 1, 0, D] for an input that fits in one segment."""
        return x.new_zeros(x.shape[0], 1, 0, x.shape[2])

    def memory(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """XL memory: positions ``[sL - m, sL)`` for segment ``s`` -> [B, S, m, D], [B, S, m]."""
        s = x.shape[1] // self.segment_len
        starts = torch.arange(s, device=x.device) * self.segment_len - self.mem_len
        return windows(x, mask, starts, self.mem_len)

    # ------------------------------------------------------------------ the shared maths
    def project_kv(self, ctx: Tensor) -> tuple[Tensor, Tensor]:
        """Keys/values of context states [B, S, E, D] -> 2 x [B, H, S, E, Dh] (W_k, W_v)."""
        w, b = self.to_qkv.weight, self.to_qkv.bias
        d = self.qkv_dim
        k = F.linear(ctx, w[d : 2 * d], b[d : 2 * d])
        v = F.linear(ctx, w[2 * d :], b[2 * d :])
        shape = (*ctx.shape[:3], self.heads, self.head_dim)
        return (t.view(shape).permute(0, 3, 1, 2, 4) for t in (k, v))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool -> [B, N, D]."""
        bsz, n, _ = x.shape
        # An input no longer than a segment is one segment whose context lies before position 0
        # (all masked): attend within the real length, with no padding and no context.
        single = n <= self.segment_len
        seg = n if single else self.segment_len
        xp = pad_to_multiple(x, seg, dim=1)
        mp = pad_to_multiple(mask.bool(), seg, dim=1, value=False)
        s = xp.shape[1] // seg
        q, k, v = (self.split_heads(t) for t in self.to_qkv(xp).chunk(3, dim=-1))
        q, k, v = (t.reshape(bsz, self.heads, s, seg, self.head_dim) for t in (q, k, v))
        if single:
            ctx, ctx_mask = self.no_context(xp), mp.new_zeros(bsz, 1, 0)
        else:
            ctx, ctx_mask = self.context(xp.detach(), mp)  # [B, S, E, D], [B, S, E]
        e = ctx.shape[2]
        keymask = torch.cat([ctx_mask, mp.view(bsz, s, seg)], dim=2)  # [B, S, E+L]
        if e:
            kc, vc = self.project_kv(ctx)
            k, v = torch.cat([kc, k], dim=3), torch.cat([vc, v], dim=3)
        u, vb = self.u[None, :, None, None], self.v[None, :, None, None]
        content = torch.einsum("bhsid,bhsjd->bhsij", q + u, k)  # terms (a) + (c)
        # distances i - j over [context; segment]: query i at E + i, key j at j
        dist = torch.arange(e + seg - 1, -seg, -1, device=x.device)  # [P], descending
        table = relative_sinusoid(dist, self.dim).to(x.dtype)
        rk = self.r_proj(table).view(-1, self.heads, self.head_dim)  # [P, H, Dh]
        pos_all = torch.einsum("bhsid,phd->bhsip", q + vb, rk)  # terms (b) + (d), [.., L, P]
        i = torch.arange(seg, device=x.device)[:, None]
        j = torch.arange(e + seg, device=x.device)[None, :]
        idx = (seg - 1 - i + j).expand(*pos_all.shape[:-1], e + seg)
        scores = (content + pos_all.gather(-1, idx)) * self.head_dim**-0.5
        scores = scores.to(softmax_dtype(x.dtype))
        scores = scores.masked_fill(~keymask[:, None, :, None, :], torch.finfo(scores.dtype).min)
        probs = F.dropout(scores.softmax(-1).to(x.dtype), dropout_p(self), self.training)
        out = torch.einsum("bhsij,bhsjd->bhsid", probs, v)
        out = out.reshape(bsz, self.heads, s * seg, self.head_dim)[:, :, :n]
        return self.to_out(self.merge_heads(out))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, segment_len={self.segment_len}, mem_len={self.mem_len}"


__all__ = ["SegmentRecurrentAttention", "relative_sinusoid", "softmax_dtype", "windows"]
