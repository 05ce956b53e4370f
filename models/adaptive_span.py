"""Adaptive attention span (Sukhbaatar et al. 2019, "Adaptive Attention Span in Transformers").

Each head ``h`` learns a span ``z_h = max_span * clamp(s_h, 0, 1)`` (``s_h`` a parameter,
initialised to 0 as in the paper's code) and softly masks its attention with the ramp

    m_z(x) = clamp((R + z - x) / R, 0, 1),      x = |i - j|, R = ``ramp``

    a_ij = m_z(|i - j|) exp(s_ij) / sum_k m_z(|i - k|) exp(s_ik)

over the keys of a local window ``|i - j| < max_span`` (keys past the window would have
``m = 0`` anyway once ``z + R <= max_span``). The window is gathered blockwise (blocks of
``max_span`` positions, each query block reads its own and both neighbouring key blocks), so
cost and memory are ``O(n * max_span)``. The auxiliary loss is the paper's L1 span penalty,
``span_loss_coef * mean_h z_h``, returned by ``aux_loss()`` after each forward pass.

Departure: the paper is causal (keys ``j <= i`` of a language model); LRA's encoder is
bidirectional, so the distance is ``|i - j|`` (keys on both sides of the query).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import (
    check_int,
    from_blocks,
    gather_blocks,
    mask_blocks,
    neighbour_blocks,
    to_blocks,
)
from models.kernels import softmax_over_key_sets


@register("adaptive_span")
class AdaptiveSpanAttention(ProjectedAttention):
    """Softmax attention over a local window with a learned soft span per head.

    Options:
        max_span: window ``S``: keys at distance ``< S`` (int >= 1; default 512).
        ramp: ramp length ``R`` of the soft mask (int >= 1; default 32, the paper's).
        span_loss_coef: weight of the L1 span penalty (float >= 0; default 2e-6, the paper's).
    """

    exact = False
    complexity = "n*s"
    test_options = {"max_span": 16, "ramp": 4}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        max_span: int = 512,
        ramp: int = 32,
        span_loss_coef: float = 2e-6,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.max_span = check_int("max_span", max_span, 1)
        self.ramp = check_int("ramp", ramp, 1)
        if isinstance(span_loss_coef, bool) or not isinstance(span_loss_coef, int | float):
            raise ValueError(f"option span_loss_coef must be a float >= 0, got {span_loss_coef!r}")
        if span_loss_coef < 0:
            raise ValueError(f"option span_loss_coef must be a float >= 0, got {span_loss_coef!r}")
        self.span_loss_coef = float(span_loss_coef)
        self.span_frac = nn.Parameter(torch.zeros(heads))  # z_h / max_span before clamping
        self._aux: Tensor | None = None

    def spans(self) -> Tensor:
        """Current spans ``z`` [H] in positions, in ``[0, max_span]``."""
        return self.span_frac.clamp(0.0, 1.0) * self.max_span

    def soft_mask(self, distance: Tensor) -> Tensor:
        """m_z(distance) per head: distance [...] -> [H, ...] in [0, 1]."""
        z = self.spans().view(-1, *([1] * distance.dim()))
        return ((self.ramp + z - distance) / self.ramp).clamp(0.0, 1.0)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n = q.shape[2]
        self._aux = self.span_loss_coef * self.spans().mean()
        b = min(self.max_span, n)  # blocks of b: three neighbouring blocks cover |i-j| < b
        qb, kb, vb = (to_blocks(t, b) for t in (q * self.head_dim**-0.5, k, v))
        nb = qb.shape[2]
        idx, kpos = neighbour_blocks(nb, b, (-1, 0, 1), q.device)  # [nb, 3], [nb, 3b]
        qpos = torch.arange(nb * b, device=q.device).view(nb, b, 1)
        dist = (kpos[:, None, :] - qpos).abs()  # [nb, b, 3b]
        allowed = (kpos[:, None, :] >= 0) & (dist < self.max_span)
        allowed = allowed & gather_blocks(mask_blocks(mask, b), idx)[:, :, :, None, :]
        (probs,), has_key = softmax_over_key_sets(
            [qb @ gather_blocks(kb, idx).transpose(-2, -1)], [allowed]
        )
        # m exp(s) / sum m exp(s) = (m p) / sum (m p) with p the plain window softmax
        weights = probs * self.soft_mask(dist.to(q.dtype)).to(q.dtype)  # [B, H, nb, b, 3b]
        total = weights.sum(-1, keepdim=True)  # 0 only for a row whose keys all have m = 0
        weights = weights / total.masked_fill(total == 0, 1.0)
        weights = nn.functional.dropout(weights, p=dropout_p(self))
        out = (weights @ gather_blocks(vb, idx)).masked_fill(~has_key, 0.0)
        return from_blocks(out, n)

    def aux_loss(self) -> Tensor | None:
        """``span_loss_coef * mean span`` of the last forward pass (0-dim), or None before it."""
        return self._aux

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, max_span={self.max_span}, ramp={self.ramp}, "
            f"span_loss_coef={self.span_loss_coef}"
        )
