"""Synthesizer attention: attention weights synthesized without query-key dot products.

Tay et al. 2021, "Synthesizer: Rethinking Self-Attention for Transformer Models" (ICML):

* ``dense``: each token predicts its own row of logits over key positions,
  ``B_i = W2 relu(W1 x_i + b1) + b2`` with ``W2`` mapping to ``max_len`` positions;
* ``random``: one learned logit matrix per head, ``B = R`` [max_len, max_len],
  independent of the input; optionally factorised ``R = R1 R2^T`` (the paper's factorized
  variant).

Then ``out = softmax(B[:n, :n] + key padding mask) (X W_v)`` per head. Only values are
projected (no queries or keys). ``rank`` is the width of the synthesized logits' factorisation per head:
for ``dense`` that is the hidden width per head (``W1: dim -> heads * rank``, ``W2: rank ->
max_len`` shared by the heads, as LRA's ``dense_syn`` with ``rank = head_dim``); for
``random`` the width of the factors ``R1, R2`` [heads, max_len, rank] (LRA's
``factorized_random``; ``rank=None`` is the full [heads, max_len, max_len] matrix).

Cost: the [n, n] logits are quadratic by construction (``complexity = "n^2"``).
Departure: LRA's Synthesizer ran ``random`` with a full matrix added to the usual ``Q K^T``
logits (``ignore_dot_product=False``); this is the pure synthesizer of the paper, and the
default (dense, ``rank`` 32 in ``conf/model/synthesizer.yaml``) keeps the LRA parameter budget.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ProjectedAttention, dropout_p, register
from models.kernels import check_choice, check_int, check_length, masked_softmax

MODES = ("dense", "random")


@register("synthesizer")
class SynthesizerAttention(ProjectedAttention):
    """Dense or random synthesized attention over values.

    Options:
        max_len: longest input (set by the backbone).
        mode: ``"dense"`` (default) or ``"random"``.
        rank: rank of the synthesized logits per head (int >= 1, or None: ``head_dim`` for
            ``dense``, the full ``max_len x max_len`` matrix for ``random``).
    """

    exact = False
    needs_max_len = True
    complexity = "n^2"
    projections = "v"  # no queries or keys: values only
    test_options = {"rank": 4}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        max_len: int = 512,
        mode: str = "dense",
        rank: int | None = None,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.max_len = check_int("max_len", max_len, 1)
        self.mode = check_choice("mode", mode, MODES)
        self.rank = None if rank is None else check_int("rank", rank, 1)
        if mode == "dense":
            width = self.rank or self.head_dim
            self.hidden = nn.Linear(dim, heads * width)  # W1
            self.logits = nn.Linear(width, max_len)  # W2, shared by the heads
            for layer in (self.hidden, self.logits):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        elif self.rank is None:
            self.random = nn.Parameter(torch.empty(heads, max_len, max_len))
            for r in self.random:
                nn.init.xavier_uniform_(r)
        else:
            self.random_left = nn.Parameter(torch.empty(heads, max_len, self.rank))
            self.random_right = nn.Parameter(torch.empty(heads, max_len, self.rank))
            for r in (*self.random_left, *self.random_right):
                nn.init.xavier_uniform_(r)

    def synthesized_logits(self, x: Tensor) -> Tensor:
        """x [B, N, D] -> logits [B or 1, H, N, N] (row = query position, column = key)."""
        b, n, _ = x.shape
        check_length(n, self.max_len, "synthesizer")
        if self.mode == "dense":
            h = F.relu(self.hidden(x)).view(b, n, self.heads, -1)  # [B, N, H, rank]
            # only the first n output positions are needed: slice W2 before the product
            logits = F.linear(h, self.logits.weight[:n], self.logits.bias[:n])
            return logits.transpose(1, 2)  # [B, H, N, N]
        if self.rank is None:
            return self.random[None, :, :n, :n]
        return (self.random_left[:, :n] @ self.random_right[:, :n].transpose(-2, -1))[None]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool -> [B, N, D]."""
        (v,) = self.project(x)  # [B, H, N, Dh]
        logits = self.synthesized_logits(x).to(v.dtype)
        probs = masked_softmax(logits, mask[:, None, None, :], dropout_p(self))
        return self.to_out(self.merge_heads(probs @ v))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_len={self.max_len}, mode={self.mode}, rank={self.rank}"
