"""Full softmax attention written out: the quadratic reference of the speed and memory tables.

``softmax(Q K^T / sqrt(Dh)) V`` per head (Vaswani et al. 2017), materialising the
[B, H, N, N] score and probability matrices as the original LRA JAX code does
(Tay et al. 2021). Numerically equal to ``transformer`` (SDPA) for the same weights.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.transformer import key_padding_mask


@register("transformer_naive")
class NaiveSoftmaxAttention(ProjectedAttention):
    """Exact softmax attention with explicit scores, masking and dropout on probabilities.

    Options: none beyond the base ``(dim, heads, dropout, qkv_dim)``.
    """

    exact = True
    complexity = "n^2"

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        scores = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5  # [B, H, N, N]
        # every row keeps at least one key (see key_padding_mask), so softmax is finite
        scores = scores.masked_fill(~key_padding_mask(mask), float("-inf"))
        probs = scores.softmax(dim=-1)
        p = dropout_p(self)
        if p > 0:
            probs = F.dropout(probs, p=p)
        return probs @ v
