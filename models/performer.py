"""Performer attention: FAVOR+ with positive orthogonal random features (softmax kernel).

Choromanski et al. 2021, "Rethinking Attention with Performers" (positive random features,
Lemma 1; orthogonal random features):
``exp(x . y) = E_w[phi(x) phi(y)]`` with the positive random features

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(M),      W [M, Dh], rows w_i ~ N(0, I),

applied to ``x = q / Dh^(1/4)`` and ``y = k / Dh^(1/4)`` so that ``phi(q) . phi(k)`` estimates
the softmax kernel ``exp(q . k / sqrt(Dh))``. The rows of ``W`` are drawn in blocks of ``Dh``
mutually orthogonal directions (QR of a Gaussian matrix) with lengths of independent Gaussian
vectors (chi-distributed), the paper's orthogonal random features (ORF), which lower
the estimator's variance. Attention is then linear in N (``models.kernels.linear_attention``).

Numerics: every query row and all real keys of a head are shifted by their maximum exponent
before ``exp``; these factors cancel exactly between numerator and normaliser. The key
maximum is taken over real keys only, and padded keys' features are zeroed in the numerator
and the normaliser alike (the reference implementation adds padded keys to the normaliser).

Redrawing (the paper redraws the features periodically while training): in training, ``W``
is redrawn every ``redraw_interval`` forward calls (0 = never); in eval it is never redrawn. ``W`` is a
persistent buffer, so a checkpoint carries the features it was evaluated with.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from models.base import ProjectedAttention, register
from models.kernels import check_int, linear_attention


def orthogonal_gaussian(m: int, d: int, device: torch.device | None = None) -> Tensor:
    """[m, d] random features: blocks of d orthogonal unit rows, scaled by chi(d) lengths.

    Each full block is the Q factor of a d x d standard Gaussian matrix (sign-corrected so it
    is Haar-distributed); a last partial block keeps its first rows. Row lengths are the
    norms of independent N(0, I_d) vectors, so every row is marginally N(0, I_d). Drawn with
    torch's global RNG, in float64 for a well-conditioned QR, returned as float32.
    """
    g = torch.randn(math.ceil(m / d), d, d, dtype=torch.float64, device=device)
    q, r = torch.linalg.qr(g)  # one batched QR for all blocks
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]  # Haar measure
    rows = q.transpose(-2, -1).reshape(-1, d)[:m]
    lengths = torch.randn(m, d, dtype=torch.float64, device=device).norm(dim=1, keepdim=True)
    return (rows * lengths).float()


def favor_features(x: Tensor, w: Tensor, real: Tensor | None = None) -> Tensor:
    """Positive softmax-kernel features, stabilised.

    Args:
        x: [B, H, N, Dh] queries or keys, already scaled by ``Dh^(-1/4)``.
        w: [M, Dh] random directions.
        real: None for queries (each row is shifted by its own maximum); for keys the [B, N]
            bool mask: all real keys of a (batch, head) share one shift (their maximum),
            and padded keys get features 0.

    Returns:
        [B, H, N, M]: ``exp(W x - |x|^2/2 - shift) / sqrt(M)`` (padded keys 0).
    """
    # one [B, H, N, M] buffer, updated in place (no step's backward needs its input)
    expo = (x @ w.T).to(x.dtype)  # autocast computes the product in bf16/fp16
    expo -= x.pow(2).sum(-1, keepdim=True) / 2
    if real is None:
        shift = expo.detach().amax(dim=-1, keepdim=True)
    else:  # padded keys: exponent -inf, so exp gives 0 with a zero (not NaN) gradient
        expo.masked_fill_(~real[:, None, :, None], float("-inf"))
        shift = expo.detach().amax(dim=(-2, -1), keepdim=True)
        shift.masked_fill_(~real.any(-1)[:, None, None, None], 0.0)  # no real key
    expo -= shift + 0.5 * math.log(w.shape[0])  # the 1/sqrt(M) inside the exponential
    return expo.exp_()


@register("performer")
class PerformerAttention(ProjectedAttention):
    """FAVOR+ attention (softmax kernel, positive orthogonal random features).

    Options:
        nb_features: number of random features ``M`` (int >= 1; LRA default 256).
        redraw_interval: redraw the features every this many training forward calls
            (int >= 0; 0 = draw once at construction; LRA redrew on every call: 1).

    The ``dropout`` option has no probability matrix to act on and is unused (as in LRA).
    """

    exact = False
    complexity = "n"
    test_options = {"nb_features": 16}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        nb_features: int = 256,
        redraw_interval: int = 1,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.nb_features = check_int("nb_features", nb_features, 1)
        self.redraw_interval = check_int("redraw_interval", redraw_interval, 0)
        self.register_buffer("features", orthogonal_gaussian(nb_features, self.head_dim))
        self.calls_since_draw = 0

    @torch.no_grad()
    def redraw(self) -> None:
        """Draw new random features (global RNG) in place, on the buffer's device."""
        w = orthogonal_gaussian(self.nb_features, self.head_dim, self.features.device)
        self.features.copy_(w)
        self.calls_since_draw = 0

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        if self.training and self.redraw_interval > 0:
            if self.calls_since_draw >= self.redraw_interval:
                self.redraw()
            self.calls_since_draw += 1
        wide = torch.promote_types(q.dtype, torch.float32)  # exp in at least float32
        scale = self.head_dim**-0.25
        w = self.features.to(wide)
        phi_q = favor_features(q.to(wide) * scale, w)
        phi_k = favor_features(k.to(wide) * scale, w, real=mask)
        return linear_attention(phi_q, phi_k, v, mask, keys_zeroed=True)

    def get_extra_state(self) -> dict[str, Any]:
        return {"calls_since_draw": self.calls_since_draw}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.calls_since_draw = int(state["calls_since_draw"])

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, nb_features={self.nb_features}, "
            f"redraw_interval={self.redraw_interval}"
        )
