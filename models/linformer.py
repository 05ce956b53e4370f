"""Linformer attention: keys and values projected along the length to ``k`` rows.

Wang et al. 2020, "Linformer: Self-Attention with Linear Complexity", eq. 7:

    head = softmax(Q (E K)^T / sqrt(Dh)) (F V),      E, F [k, n]

so the score matrix is ``[n, k]``: ``O(n k)`` time and memory. As in LRA's implementation
(Tay et al. 2021, ``lra_benchmarks/models/linformer``) one projection per layer is shared by
keys and values and by all heads (``E = F``; the paper's "key-value" and "headwise" sharing),
stored for ``max_len`` positions and sliced to the input length ``n <= max_len``; a longer
input is an error. Padded keys and values are zeroed before the projection, so they add
nothing to ``E K`` or ``F V`` and real outputs do not depend on how much padding follows.
Initialisation: Xavier-uniform, as LRA's ``lr_kernel``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ProjectedAttention, dropout_p, register
from models.kernels import check_int, check_length


@register("linformer")
class LinformerAttention(ProjectedAttention):
    """Low-rank attention over ``k`` projected keys/values.

    Options:
        max_len: longest input (set by the backbone: the task's positions incl. CLS).
        k: projected length (int >= 1; LRA default 16). ``k = max_len`` with ``E`` the
            identity is full softmax attention.
    """

    exact = False
    needs_max_len = True
    complexity = "n*k"
    test_options = {"k": 8}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        max_len: int = 512,
        k: int = 16,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.max_len = check_int("max_len", max_len, 1)
        self.k = check_int("k", k, 1)
        self.proj = nn.Parameter(torch.empty(k, max_len))  # E = F: [k, max_len]
        nn.init.xavier_uniform_(self.proj)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n = q.shape[2]
        check_length(n, self.max_len, "linformer")
        # padded keys leave the projection: zero their columns of E (a [B, 1, k, N] copy,
        # far smaller than masked copies of K and V)
        e = self.proj[:, :n].to(q.dtype).masked_fill(~mask[:, None, None, :], 0.0)
        k_low = e @ k  # [B, H, k, Dh]
        v_low = e @ v
        scores = (q * self.head_dim**-0.5) @ k_low.transpose(-2, -1)  # [B, H, N, k]
        probs = scores.softmax(dim=-1, dtype=torch.promote_types(q.dtype, torch.float32))
        return F.dropout(probs.to(q.dtype), p=dropout_p(self)) @ v_low

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_len={self.max_len}, k={self.k}"
