"""Full softmax attention through ``torch.nn.functional.scaled_dot_product_attention``.

``softmax(Q K^T / sqrt(Dh)) V`` per head (Vaswani et al. 2017, "Attention Is All You Need"),
the Transformer baseline of LRA (Tay et al. 2021). On GPU torch dispatches to its fused
memory-efficient kernel (a boolean key-padding mask rules out the flash kernel); on CPU to the
math or flash-CPU kernel. Same maths as ``transformer_naive``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register


def key_padding_mask(mask: Tensor) -> Tensor:
    """Boolean attention mask [B, 1, 1, N] (True = may attend) from ``mask`` [B, N].

    A sequence with no real token at all would give rows of all ``-inf`` scores and NaN
    outputs; for such a sequence every key is allowed instead, so its (meaningless) outputs
    stay finite. Sequences with at least one real token are unaffected, and there is no
    host-device synchronisation.
    """
    keep = mask | ~mask.any(dim=-1, keepdim=True)
    return keep[:, None, None, :]


@register("transformer")
class SoftmaxAttention(ProjectedAttention):
    """Exact softmax attention via torch's fused SDPA kernels.

    Options: none beyond the base ``(dim, heads, dropout, qkv_dim)``; ``dropout`` is applied
    to the attention probabilities in training mode.
    """

    exact = True
    complexity = "n^2"

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_padding_mask(mask), dropout_p=dropout_p(self)
        )
