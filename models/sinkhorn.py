"""Sparse Sinkhorn attention: each query block reads its own block and a learned, sorted block.

Tay et al. 2020, "Sparse Sinkhorn Attention" (ICML). The sequence is cut into ``nb`` blocks
of ``b`` tokens. A sorting network scores, for every block ``u``, where it should look:
``S[u, :] = W s_u + c`` with ``s_u`` the mean of the block's real keys ([Dh]) and ``W``
mapping to ``max_len / b`` block positions (shared by the heads, as LRA's sort net). Sinkhorn
normalisation (``sinkhorn_iters`` alternating row/column log-normalisations of
``S / temperature``, the last one over rows) turns ``S`` into a soft permutation ``P``
[nb, nb]; the sorted keys and values of block ``u`` are ``sum_v P[u, v] K_v`` (same for V).
Every query of block ``u`` then takes one softmax over the ``2 b`` keys of its own block and
of its sorted block. ``sinkhorn_iters = 0`` is a plain row softmax (what LRA ran).

Cost: attention ``O(n b)``; sorting ``O(nb^2)`` scores and ``O(nb^2 b Dh) = O(n^2 Dh / b)``
mixing flops with ``O(n Dh)`` memory, never an ``n x n`` tensor.
Masking: padded keys/values are zeroed before pooling and mixing; blocks with no real token
take no part in the Sinkhorn normalisation (they map to themselves), so real outputs do not
depend on how much padding follows; a sorted key counts as real if any block mixed into it
has a real token at that slot. Lengths that are not a multiple of ``b`` are padded internally.
With one block (``block_size >= n``) ``P = [1]`` and the result is full softmax attention.
Departures: no Gumbel noise (deterministic sorting); the sort net reads pooled keys (LRA: summed
keys) with one linear layer (as LRA).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import to_blocks
from models.kernels import check_int, check_length, check_positive_float, softmax_over_key_sets


def blocks_of(x: Tensor, b: int) -> Tensor:
    """[B, H, N, Dh] -> [B, H, nb, b, Dh], zero-padding N to a multiple of b; contiguous, so
    that the block products below need no copies of their own (x may be a head view)."""
    return to_blocks(x.contiguous(), b)


def sinkhorn(log_alpha: Tensor, iters: int) -> Tensor:
    """Soft permutation from scores [..., nb, nb] (``-inf`` = forbidden).

    Row log-normalisation, then ``iters`` x (column, row): rows of the result sum to 1 and,
    as ``iters`` grows, columns too (Sinkhorn 1964; Adams & Zemel 2011). Every row and
    column must keep at least one finite entry.
    """
    log_alpha = log_alpha - log_alpha.logsumexp(dim=-1, keepdim=True)
    for _ in range(iters):
        log_alpha = log_alpha - log_alpha.logsumexp(dim=-2, keepdim=True)
        log_alpha = log_alpha - log_alpha.logsumexp(dim=-1, keepdim=True)
    return log_alpha.exp()


@register("sinkhorn")
class SinkhornAttention(ProjectedAttention):
    """Block-sorted sparse attention (own block + Sinkhorn-sorted block).

    Options:
        max_len: longest input (set by the backbone); fixes the sort net's output width.
        block_size: tokens per block ``b`` (int >= 1; LRA default 50).
        sinkhorn_iters: Sinkhorn column/row iterations (int >= 0; 0 = row softmax).
        temperature: divides the sort scores before normalisation (> 0).
    """

    exact = False
    needs_max_len = True
    complexity = "n*b+n^2/b"
    test_options = {"block_size": 8, "sinkhorn_iters": 3}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        max_len: int = 512,
        block_size: int = 50,
        sinkhorn_iters: int = 5,
        temperature: float = 0.75,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.max_len = check_int("max_len", max_len, 1)
        self.block_size = check_int("block_size", block_size, 1)
        self.sinkhorn_iters = check_int("sinkhorn_iters", sinkhorn_iters, 0)
        self.temperature = check_positive_float("temperature", temperature)
        self.sort_net = nn.Linear(self.head_dim, math.ceil(max_len / block_size))

    def sort_matrix(self, kb: Tensor, real: Tensor) -> Tensor:
        """Soft permutation P [B, H, nb, nb] (row = target block u, column = source block v).

        kb: blocked keys [B, H, nb, b, Dh] with padded keys zeroed; real: [B, 1, nb, b] bool.
        """
        nb = kb.shape[2]
        count = real.sum(-1, keepdim=True).clamp(min=1).to(kb.dtype)  # [B, 1, nb, 1]
        pooled = kb.sum(3) / count  # mean of real keys [B, H, nb, Dh]
        scores = F.linear(pooled, self.sort_net.weight[:nb], self.sort_net.bias[:nb])
        live = real.any(-1)  # [B, 1, nb]: blocks with a real token
        eye = torch.eye(nb, dtype=torch.bool, device=kb.device)
        allowed = (live[..., :, None] & live[..., None, :]) | (eye & ~live[..., :, None])
        log_alpha = (scores / self.temperature).masked_fill(~allowed, float("-inf"))
        return sinkhorn(log_alpha, self.sinkhorn_iters)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n = q.shape[2]
        check_length(n, self.max_len, "sinkhorn")
        b = min(self.block_size, n)
        real = mask[:, None, :, None]
        qb = blocks_of(q * self.head_dim**-0.5, b)
        kb = blocks_of(k.masked_fill(~real, 0.0), b)
        vb = blocks_of(v.masked_fill(~real, 0.0), b)
        real_b = blocks_of(mask[:, None, :, None].to(q.dtype), b)[..., 0] > 0  # [B, 1, nb, b]
        p = self.sort_matrix(kb, real_b)  # [B, H, nb, nb]
        ks = torch.einsum("bhuv,bhvjd->bhujd", p, kb)  # sorted keys [B, H, nb, b, Dh]
        vs = torch.einsum("bhuv,bhvjd->bhujd", p, vb)
        real_s = torch.einsum("bhuv,bhvj->bhuj", p, real_b.to(p.dtype)) > 0  # [B, H, nb, b]
        # one softmax over own + sorted keys; the two score blocks [B, H, nb, b, b] are masked
        # in place and joined once inside softmax_over_key_sets
        scores = [qb @ kb.transpose(-2, -1), qb @ ks.transpose(-2, -1)]
        allowed = [real_b[..., None, :], real_s[..., None, :]]
        (own, sorted_), has_key = softmax_over_key_sets(scores, allowed, dropout_p(self))
        out = (own @ vb + sorted_ @ vs).masked_fill(~has_key, 0.0)
        return out.flatten(2, 3)[:, :, :n]

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, max_len={self.max_len}, block_size={self.block_size}, "
            f"sinkhorn_iters={self.sinkhorn_iters}, temperature={self.temperature}"
        )
