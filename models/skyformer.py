"""Skyformer: Gaussian-kernel attention approximated with Nyström landmarks.

Chen et al. 2021, "Skyformer: Remodel Self-Attention with Gaussian Kernel and Nyström
Method", §3-4: softmax's ``exp(q.k / sqrt(d))`` is replaced by the Gaussian kernel
``kappa(q, k) = exp(-|q - k|^2 / (2 sqrt(d)))`` and the attention is ``kappa(Q, K) V``
(no row normalisation, as in the paper). ``kappa(Q, K)`` is one block of the positive
semi-definite kernel matrix of the 2N points ``[Q; K]``; its Nyström approximation with
landmarks ``Z`` is ``kappa(Q, Z) pinv(kappa(Z, Z)) kappa(Z, K)`` (paper eq. 8), cost
``O(N m)``. Landmarks: ``landmarks`` segment means of the queries and as many of the keys
(``models.nystrom.segment_means``, over real tokens only), ``2m`` in all; the pseudo-inverse
is the Newton iteration of Nyströmformer (``pinv_iters`` steps) on ``kappa(Z, Z)``.

Padding: landmarks see real tokens only; padded keys are zeroed columns of ``kappa(Z, K)``;
unused landmarks (sequence shorter than ``m``) are switched off (identity rows in
``kappa(Z, Z)``, zero columns in ``kappa(Q, Z)``). With ``landmarks >= length`` the landmarks
are all queries and keys, and the result is the exact Gaussian-kernel attention up to the
pseudo-inverse's tolerance. Departure: the authors' code samples landmarks from the
concatenated ``[Q; K]``; we take segment means of each, so the result is deterministic and
independent of padding. Dropout has nothing to act on.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.base import ProjectedAttention, register
from models.kernels import check_int, no_autocast
from models.nystrom import newton_pinv, segment_means


def gaussian_kernel(a: Tensor, b: Tensor) -> Tensor:
    """exp(-|a_i - b_j|^2 / 2) for a [..., N, Dh], b [..., M, Dh] (inputs already scaled).

    The expanded square cancels: it is computed in the inputs' dtype with autocast off.
    """
    with no_autocast(a.device):
        sq = (
            a.pow(2).sum(-1, keepdim=True)
            + b.pow(2).sum(-1)[..., None, :]
            - 2 * a @ b.transpose(-2, -1)
        )
    return torch.exp(-0.5 * sq.clamp(min=0))


@register("skyformer")
class SkyformerAttention(ProjectedAttention):
    """Nyström-approximated Gaussian-kernel attention ``kappa(Q, K) V``.

    Options:
        landmarks: segment-mean landmarks per side (queries and keys; int >= 1; default 32,
            so 64 in all).
        pinv_iters: iterations of the pseudo-inverse (int >= 0; default 6).
    """

    exact = False
    complexity = "n*m"
    test_options = {"landmarks": 8}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        landmarks: int = 32,
        pinv_iters: int = 6,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.landmarks = check_int("landmarks", landmarks, 1)
        self.pinv_iters = check_int("pinv_iters", pinv_iters, 0)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        wide = torch.promote_types(q.dtype, torch.float32)
        scale = self.head_dim**-0.25  # |q - k|^2 / (2 sqrt(d)) = |q' - k'|^2 / 2
        qw, kw = q.to(wide) * scale, k.to(wide) * scale
        vw = v.to(wide).masked_fill(~mask[:, None, :, None], 0.0)
        zq, valid_q = segment_means(qw, mask, self.landmarks)
        zk, valid_k = segment_means(kw, mask, self.landmarks)
        z, valid = torch.cat([zq, zk], 2), torch.cat([valid_q, valid_k], 1)  # [B, H, 2m, Dh]
        kzz = gaussian_kernel(z, z)
        eye = torch.eye(z.shape[2], dtype=wide, device=q.device)
        live = valid[:, None, :, None] & valid[:, None, None, :]
        kzz = torch.where(live, kzz, eye.expand_as(kzz))
        kqz = gaussian_kernel(qw, z) * valid[:, None, None, :]  # [B, H, N, 2m]
        kzk = gaussian_kernel(z, kw) * mask[:, None, None, :]  # [B, H, 2m, N]
        with no_autocast(q.device):  # pinv(K_zz) has large entries: its product in fp32
            inner = newton_pinv(kzz, self.pinv_iters) @ (kzk @ vw).to(wide)  # [B, H, 2m, Dh]
        out = kqz @ inner
        return out.to(v.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, landmarks={self.landmarks}, pinv_iters={self.pinv_iters}"
