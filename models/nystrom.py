"""Nyströmformer: softmax attention through landmarks and an iterative pseudo-inverse.

Xiong et al. 2021, "Nyströmformer: A Nyström-Based Algorithm for Approximating
Self-Attention", eq. 14-16: with ``m`` landmark queries ``Q~`` and keys ``K~`` (means of ``m``
contiguous segments of the sequence),

    softmax(Q K^T / sqrt(d)) V  ~  F  pinv(A)  (B V),
    F = softmax(Q K~^T / sqrt(d)) [N, m],  A = softmax(Q~ K~^T / sqrt(d)) [m, m],
    B = softmax(Q~ K^T / sqrt(d)) [m, N],

where ``pinv`` is the Newton-type iteration of the paper (eq. 16, 6 iterations by default)
started at ``A^T / (||A||_1 ||A||_inf)``. Cost ``O(N m)``; no ``N x N`` tensor. The optional
depthwise convolution over the values (``conv_kernel`` taps per head, the skip of the
authors' code) is added to the output.

Padding: segments are cut over each sequence's REAL tokens (in order), so landmarks never see
padding and do not depend on the padded length; ``B`` ignores padded keys; padded values are
zeroed before the convolution. A sequence shorter than ``m`` gets one landmark per token and
its unused landmarks are switched off (identity rows in ``A``, zero columns in ``F``).
Departure from the authors' code: their initial scale of the iteration is the maximum over
the whole batch; ours is per matrix (so one item cannot change another's output).
With ``landmarks >= length`` every token is its own landmark and the result is full softmax
attention up to the tolerance of the pseudo-inverse iteration.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.base import ProjectedAttention, register
from models.kernels import check_int, masked_softmax, no_autocast


def segment_means(x: Tensor, mask: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Means of ``m`` contiguous segments of each sequence's real tokens.

    Args:
        x: [B, H, N, Dh]; mask: [B, N] bool, True = real token.
    Returns:
        means [B, H, m, Dh] and valid [B, m] bool (a segment with at least one real token).
        The real token of rank ``r`` (0-based, in order) of a sequence of ``L`` real tokens
        goes to segment ``floor(r * m / L)``, so the segments depend only on the real tokens.
    """
    b, h, n, d = x.shape
    length = mask.sum(-1, keepdim=True).clamp(min=1)  # [B, 1]
    rank = mask.long().cumsum(-1) - 1  # [B, N]
    seg = torch.div(rank.clamp(min=0) * m, length, rounding_mode="floor")
    seg = torch.where(mask, seg, torch.full_like(seg, m))  # padding -> a dropped bin m
    counts = torch.zeros(b, m + 1, dtype=x.dtype, device=x.device)
    counts.scatter_add_(1, seg, torch.ones_like(seg, dtype=x.dtype))
    sums = x.new_zeros(b, h, m + 1, d)
    sums.scatter_add_(2, seg[:, None, :, None].expand(b, h, n, d), x)
    counts = counts[:, :m]
    means = sums[:, :, :m] / counts.clamp(min=1)[:, None, :, None]
    return means, counts > 0


def newton_pinv(a: Tensor, iters: int) -> Tensor:
    """Iterative Moore-Penrose pseudo-inverse of ``a`` [..., m, m] (Xiong et al. 2021, eq. 16).

    ``Z0 = a^T / (max_j sum_i |a_ij| * max_i sum_j |a_ij|)`` (per matrix), then
    ``Z <- Z (13 I - a Z (15 I - a Z (7 I - a Z))) / 4``, ``iters`` times, in ``a``'s dtype
    (pass at least float32) with autocast off.
    """
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    col = a.abs().sum(-2).amax(-1)[..., None, None]
    row = a.abs().sum(-1).amax(-1)[..., None, None]
    z = a.transpose(-2, -1) / (col * row)
    with no_autocast(a.device):  # the iteration diverges from fp32 in bf16 matmuls
        for _ in range(iters):
            az = a @ z
            z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


@register("nystrom")
class NystromAttention(ProjectedAttention):
    """Nyström approximation of softmax attention with ``landmarks`` segment-mean landmarks.

    Options:
        landmarks: number of landmarks ``m`` (int >= 1; default 64).
        pinv_iters: iterations of the pseudo-inverse (int >= 0; the paper's 6).
        conv_kernel: taps of the depthwise value convolution added to the output (odd int;
            0 = none; default 35). Dropout acts on nothing (no probability matrix is formed).
    """

    exact = False
    complexity = "n*m"
    test_options = {"landmarks": 8, "conv_kernel": 5}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        landmarks: int = 64,
        pinv_iters: int = 6,
        conv_kernel: int = 35,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.landmarks = check_int("landmarks", landmarks, 1)
        self.pinv_iters = check_int("pinv_iters", pinv_iters, 0)
        self.conv_kernel = check_int("conv_kernel", conv_kernel, 0)
        if conv_kernel and conv_kernel % 2 == 0:
            raise ValueError(f"option conv_kernel must be 0 or odd, got {conv_kernel!r}")
        self.conv = None
        if conv_kernel:
            self.conv = nn.Conv2d(
                heads,
                heads,
                (conv_kernel, 1),
                padding=(conv_kernel // 2, 0),
                groups=heads,
                bias=False,
            )

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        wide = torch.promote_types(q.dtype, torch.float32)
        qw, kw, vw = (t.to(wide) for t in (q, k, v))
        qw = qw * self.head_dim**-0.5
        ql, valid = segment_means(qw, mask, self.landmarks)  # [B, H, m, Dh], [B, m]
        kl, _ = segment_means(kw, mask, self.landmarks)
        vw = vw.masked_fill(~mask[:, None, :, None], 0.0)
        lm = valid[:, None, None, :]  # [B, 1, 1, m]
        f = masked_softmax(qw @ kl.transpose(-2, -1), lm)  # [B, H, N, m]
        bm = masked_softmax(ql @ kw.transpose(-2, -1), mask[:, None, None, :])  # [B, H, m, N]
        bv = (bm @ vw).to(wide)  # [B, H, m, Dh]
        with no_autocast(q.device):  # A, its pseudo-inverse (large entries) and pinv(A) B V
            a = masked_softmax(ql @ kl.transpose(-2, -1), lm)  # [B, H, m, m]
            eye = torch.eye(self.landmarks, dtype=wide, device=q.device)
            off = ~valid[:, None, :, None]  # unused landmark rows -> identity rows
            a = torch.where(off, eye.expand_as(a), a)
            inner = newton_pinv(a, self.pinv_iters) @ bv  # [B, H, m, Dh]
        out = f @ inner
        if self.conv is not None:
            out = out + self.conv(vw)
        return out.to(v.dtype)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, landmarks={self.landmarks}, "
            f"pinv_iters={self.pinv_iters}, conv_kernel={self.conv_kernel}"
        )
