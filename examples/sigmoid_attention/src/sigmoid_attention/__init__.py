"""Sigmoid attention for the lra harness (Ramapuram et al. 2024, "Theory, Analysis, and Best
Practices for Sigmoid Self-Attention", arXiv 2409.04431).

Every query weighs every key independently, ``sigmoid(q k^T / sqrt(Dh) + b)``, instead of
normalising the weights over keys with a softmax. The paper's bias ``b = -log(n)`` keeps the
output's scale independent of the sequence length n; here n is each item's number of real
keys, so padding never changes an output. Cost O(n^2) time and memory, like full attention.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models import ProjectedAttention, dropout_p


class SigmoidAttention(ProjectedAttention):
    """``to_out(sigmoid(Q K^T / sqrt(Dh) + b) V)`` over real keys, per head.

    Options:
        bias: ``"log_n"`` (b = -log of the item's real key count, the paper's choice) or a
            number (a fixed b).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        bias: str | float = "log_n",
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        if bias != "log_n" and (isinstance(bias, bool) or not isinstance(bias, int | float)):
            raise ValueError(f"bias must be 'log_n' or a number, got {bias!r}")
        self.bias = bias

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool (True = real) -> [B, H, N, Dh]."""
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # [B, H, N, N]
        if self.bias == "log_n":
            real = mask.sum(-1).clamp(min=1).to(scores.dtype)  # [B]
            bias = -torch.log(real)[:, None, None, None]
        else:
            bias = float(self.bias)
        weights = torch.sigmoid(scores + bias) * mask[:, None, None, :].to(scores.dtype)
        weights = torch.nn.functional.dropout(weights, dropout_p(self), self.training)
        return weights @ v

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bias={self.bias!r}"
