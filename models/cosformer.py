"""cosFormer: ReLU linear attention with a cos-based re-weighting of distance.

Qin et al. 2022, "cosFormer: Rethinking Softmax in Attention", eq. 9-11: with
``theta_i = pi/2 * i / M`` (``M`` = sequence length),

    out_i = sum_j relu(q_i).relu(k_j) cos(theta_i - theta_j) v_j
            / sum_j relu(q_i).relu(k_j) cos(theta_i - theta_j),

and ``cos(theta_i - theta_j) = cos(theta_i) cos(theta_j) + sin(theta_i) sin(theta_j)``
decomposes the weight into two linear-attention terms: features
``[relu(q_i) cos(theta_i), relu(q_i) sin(theta_i)]`` (2 Dh wide, non-negative as
``theta in [0, pi/2)``) and the same for keys, so the cost is ``O(N Dh^2)``
(``models.kernels.linear_attention``; padded keys leave both sums).

Padding: ``i`` is the rank of a token among its sequence's real tokens and ``M`` the number of
real tokens, so appended (or interleaved) padding changes no real output. Departure: the
paper's code takes ``M`` as the padded batch length; with ours the re-weighting is that of the
unpadded sequence. A query whose features are all zero (ReLU) gets output 0, where the
paper's code adds ``eps`` to the normaliser (also 0 then). No ``1/sqrt(d)`` scaling (as the
paper); dropout has nothing to act on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, register
from models.kernels import linear_attention


def cos_angles(mask: Tensor) -> Tensor:
    """theta [B, N] = pi/2 * rank / M over each sequence's real tokens (0 at padding)."""
    length = mask.sum(-1, keepdim=True).clamp(min=1)
    rank = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return (math.pi / 2) * rank / length * mask


def cos_features(x: Tensor, theta: Tensor) -> Tensor:
    """[relu(x) cos(theta), relu(x) sin(theta)]: x [B, H, N, Dh], theta [B, N] -> [B, H, N, 2Dh]."""
    r = F.relu(x)
    th = theta[:, None, :, None].to(r.dtype)
    return torch.cat([r * torch.cos(th), r * torch.sin(th)], dim=-1)


@register("cosformer")
class CosformerAttention(ProjectedAttention):
    """ReLU kernel attention re-weighted by ``cos(pi/2 (i - j) / M)``, linear in N.

    Options: none beyond the base ``(dim, heads, dropout, qkv_dim)``.
    """

    exact = False
    complexity = "n"

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        theta = cos_angles(mask)
        return linear_attention(cos_features(q, theta), cos_features(k, theta), v, mask)
