"""Linear attention with the ``elu(x) + 1`` feature map.

Katharopoulos et al. 2020, "Transformers are RNNs: Fast Autoregressive Transformers with
Linear Attention", eq. 4-7: softmax's ``exp(q . k)`` is replaced by the kernel
``phi(q) . phi(k)`` with ``phi(x) = elu(x) + 1`` (positive), so attention factorises as

    out_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j))

which costs ``O(N * Dh^2)`` time and ``O(Dh^2)`` extra memory per head instead of ``O(N^2)``.
Padded keys are removed from both sums (``models.kernels.linear_attention``). As in the paper
(and LRA's implementation) q and k are not scaled by ``1/sqrt(Dh)``. There is no attention
probability matrix, so the ``dropout`` option has nothing to act on (LRA did the same).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, register
from models.kernels import linear_attention


def elu_feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1 > 0, elementwise: [..., Dh] -> [..., Dh]."""
    return F.elu(x) + 1.0


@register("linear")
class LinearAttention(ProjectedAttention):
    """Kernelised attention ``phi(Q) (phi(K)^T V)`` with ``phi = elu + 1``, normalised per query.

    Options: none beyond the base ``(dim, heads, dropout, qkv_dim)``.
    """

    exact = False
    complexity = "n"

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        return linear_attention(elu_feature_map(q), elu_feature_map(k), v, mask)
