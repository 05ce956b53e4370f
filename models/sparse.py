"""Sparse Transformer attention (Child et al. 2019, "Generating Long Sequences with Sparse
Transformers"), the factorised patterns merged into one head (their §4.3, "merged" variant),
bidirectional as an encoder needs.

With stride/block ``l`` (``block_size``) and ``c`` summary positions per block, query ``i``
may attend to key ``j`` iff

* ``pattern="fixed"`` (LRA's choice, ``l = 50, c = 10``): ``i // l == j // l`` (same block)
  or ``j mod l >= l - c`` (``j`` is one of the last ``c`` "summary" positions of a block);
* ``pattern="strided"``: ``|i - j| <= l`` (the ``l`` previous and next positions) or
  ``(i - j) mod l == 0`` (every ``l``-th position).

Computed blockwise, never as an ``N x N`` matrix: the local part reads the query's own block
(fixed) or its three neighbouring blocks (strided), ``O(N * l)``; the second part reads the
``c * N / l`` summary keys (fixed) or the ``N / l`` keys of the query's column (strided), so
the cost is ``O(N * l + N^2 * c / l)``: sub-quadratic only when ``l`` grows with ``N``
(Child et al. take ``l ~ sqrt(N)``); with LRA's fixed ``l = 50, c = 10`` the second part is a
fifth of the full matrix. A key in both parts is counted once.

Departure from the LRA code, which builds a dense mask: it applies the pattern causally
(lower-triangular; the CLS row and column fully connected) and also counts the first position
of each block as a summary. We use the bidirectional pattern defined above.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import (
    check_int,
    from_blocks,
    gather_blocks,
    mask_blocks,
    neighbour_blocks,
    to_blocks,
)
from models.kernels import softmax_over_key_sets

PATTERNS = ("fixed", "strided")


@register("sparse")
class SparseAttention(ProjectedAttention):
    """Sparse Transformer attention with the fixed or the strided pattern.

    Options:
        block_size: block length / stride ``l`` (int >= 1; LRA default 50).
        c: summary positions per block for ``fixed`` (1 <= c <= block_size; LRA default 10);
            ignored by ``strided``.
        pattern: ``"fixed"`` (default, as LRA ran it) or ``"strided"``.
    """

    exact = False
    complexity = "n*b+n^2/b"
    test_options = {"block_size": 16, "c": 1}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        block_size: int = 50,
        c: int = 10,
        pattern: str = "fixed",
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.block_size = check_int("block_size", block_size, 1)
        self.c = check_int("c", c, 1)
        if pattern not in PATTERNS:
            raise ValueError(f"option pattern must be one of {list(PATTERNS)}, got {pattern!r}")
        if pattern == "fixed" and c > block_size:
            raise ValueError(f"option c must be <= block_size ({block_size}), got {c}")
        self.pattern = pattern

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n = q.shape[2]
        # a block covering the whole sequence gives full attention for either pattern
        b = min(self.block_size, n)
        qb, kb, vb = (to_blocks(t, b) for t in (q * self.head_dim**-0.5, k, v))
        valid = mask_blocks(mask, b)  # [B, 1, nb, b]
        run = self._fixed if self.pattern == "fixed" else self._strided
        return from_blocks(run(qb, kb, vb, valid, b), n)

    def _fixed(self, qb: Tensor, kb: Tensor, vb: Tensor, valid: Tensor, b: int) -> Tensor:
        """Own block + the last ``c`` positions of every other block. Blocked in and out."""
        nb, c = qb.shape[2], min(self.c, b)
        own = qb @ kb.transpose(-2, -1)  # [B, H, nb, b, b]
        ks, vs = (t[:, :, :, b - c :].flatten(2, 3) for t in (kb, vb))  # [B, H, nb*c, Dh]
        summary = torch.einsum("bhnid,bhkd->bhnik", qb, ks)  # [B, H, nb, b, nb*c]
        key_block = torch.arange(nb, device=qb.device).repeat_interleave(c)  # [nb*c]
        other = key_block[None, :] != torch.arange(nb, device=qb.device)[:, None]  # [nb, nb*c]
        allowed_summary = valid[:, :, :, b - c :].flatten(2)[:, :, None, None, :] & other[:, None]
        (p_own, p_sum), has_key = softmax_over_key_sets(
            [own, summary], [valid[:, :, :, None, :], allowed_summary], dropout_p(self)
        )
        out = p_own @ vb + torch.einsum("bhnik,bhkd->bhnid", p_sum, vs)
        return out.masked_fill(~has_key, 0.0)

    def _strided(self, qb: Tensor, kb: Tensor, vb: Tensor, valid: Tensor, b: int) -> Tensor:
        """Window ``|i - j| <= b`` (three neighbouring blocks) + keys in the same column."""
        nb = qb.shape[2]
        idx, kpos = neighbour_blocks(nb, b, (-1, 0, 1), qb.device)  # [nb, 3], [nb, 3b]
        kw, vw = gather_blocks(kb, idx), gather_blocks(vb, idx)  # [B, H, nb, 3b, Dh]
        qpos = torch.arange(nb * b, device=qb.device).view(nb, b, 1)
        near = (kpos[:, None, :] >= 0) & ((kpos[:, None, :] - qpos).abs() <= b)  # [nb, b, 3b]
        allowed_window = near & gather_blocks(valid, idx)[:, :, :, None, :]
        window = qb @ kw.transpose(-2, -1)  # [B, H, nb, b, 3b]
        # column part: query (p, t) reads key (p', t) for every block p'; s[..., p, t, p']
        column = torch.einsum("bhptd,bhqtd->bhptq", qb, kb)  # [B, H, nb, b, nb]
        blocks = torch.arange(nb, device=qb.device)
        far = (blocks[:, None] - blocks[None, :]).abs() > 1  # [nb, nb]; else in the window
        allowed_column = valid.transpose(2, 3)[:, :, None] & far[:, None, :]  # [B,1,nb,b,nb]
        (p_win, p_col), has_key = softmax_over_key_sets(
            [window, column], [allowed_window, allowed_column], dropout_p(self)
        )
        out = p_win @ vw + torch.einsum("bhptq,bhqtd->bhptd", p_col, vb)
        return out.masked_fill(~has_key, 0.0)

    def extra_repr(self) -> str:
        extra = f", c={self.c}" if self.pattern == "fixed" else ""
        return (
            f"{super().extra_repr()}, pattern={self.pattern}, block_size={self.block_size}{extra}"
        )
