"""Full softmax attention through ``torch.nn.functional.scaled_dot_product_attention``.

``softmax(Q K^T / sqrt(Dh)) V`` per head (Vaswani et al. 2017, "Attention Is All You Need"),
the Transformer baseline of LRA (Tay et al. 2021). A batch without padding passes no
mask, so torch may pick its fused flash kernel (GPU and CPU); a batch with padding passes a
boolean key-padding mask, which rules the CUDA flash kernel out (the memory-efficient kernel
takes masks; torch's CPU flash kernel does too). ``lra-bench`` records which kernel ran
(``sdpa_backend``). Same maths as ``transformer_naive``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.kernels import may_have_padding


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
            q, k, v, attn_mask=padding_mask_or_none(mask), dropout_p=dropout_p(self)
        )


def padding_mask_or_none(mask: Tensor) -> Tensor | None:
    """``None`` when ``mask`` [B, N] has no padding (fused kernels allowed), else the
    :func:`key_padding_mask`. Under ``torch.compile`` the mask is always passed, so the
    compiled graph has no data-dependent branch."""
    if not may_have_padding(mask):
        return None
    return key_padding_mask(mask)
