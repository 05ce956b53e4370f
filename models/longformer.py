"""Longformer attention (Beltagy et al. 2020, "Longformer: The Long-Document Transformer"):
a sliding window plus a few global tokens, without the dilated and causal variants (as LRA).

With window ``w`` (``window``) and ``g`` global tokens (``global_tokens``, the first ``g``
positions; position 0 is the CLS token of the backbone), query ``i`` may attend to key ``j`` iff

    -((w - 1) // 2) <= j - i <= w // 2      (the window: ``w`` keys, as the LRA code counts it)
    or i < g                                (a global query attends to every key)
    or j < g                                (every query attends to the global keys).

Windowed part: blocks of ``max(w // 2, 1)`` positions, each reading its three neighbouring
key blocks (``O(N * w)``); global keys are one shared key set of size ``g`` (``O(N * g)``); global
queries get full rows (``O(g * N)``). A global key inside a window is counted once.

Departures from the LRA code: it builds dense ``N x N`` masks, has separate global q/k/v
projections and passes no global mask (window only; ``global_tokens=0`` here). We share one
set of projections (the Transformer's parameter count) and make CLS global by default.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import (
    check_int,
    from_blocks,
    full_rows,
    gather_blocks,
    mask_blocks,
    neighbour_blocks,
    to_blocks,
)
from models.kernels import softmax_over_key_sets


@register("longformer")
class LongformerAttention(ProjectedAttention):
    """Sliding-window attention with global tokens at the start of the sequence.

    Options:
        window: keys in the sliding window ``w`` (int >= 1; LRA default 512): ``(w - 1) // 2``
            to the left of the query, the query itself, ``w // 2`` to the right.
        global_tokens: the first ``g`` positions are global (int >= 0; default 1, the CLS
            position). The same q/k/v projections serve window and global attention.
    """

    exact = False
    complexity = "n*w"
    test_options = {"window": 12, "global_tokens": 1}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        window: int = 512,
        global_tokens: int = 1,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.window = check_int("window", window, 1)
        self.global_tokens = check_int("global_tokens", global_tokens, 0)
        self.left, self.right = (window - 1) // 2, window // 2

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n, g, p = q.shape[2], min(self.global_tokens, q.shape[2]), dropout_p(self)
        q = q * self.head_dim**-0.5
        b = min(max(self.right, 1), n)  # three blocks of b cover the window
        qb, kb, vb = (to_blocks(t, b) for t in (q, k, v))
        nb = qb.shape[2]
        idx, kpos = neighbour_blocks(nb, b, (-1, 0, 1), q.device)  # [nb, 3], [nb, 3b]
        kw, vw = gather_blocks(kb, idx), gather_blocks(vb, idx)  # [B, H, nb, 3b, Dh]
        offset = kpos[:, None, :] - torch.arange(nb * b, device=q.device).view(nb, b, 1)
        # a global key (j < g) is read below, not here; kpos >= g also drops the -1 entries
        in_window = (offset >= -self.left) & (offset <= self.right) & (kpos[:, None, :] >= g)
        scores = [qb @ kw.transpose(-2, -1)]  # [B, H, nb, b, 3b]
        allowed = [in_window & gather_blocks(mask_blocks(mask, b), idx)[:, :, :, None, :]]
        if g:  # every query also reads the g global keys (kept out of the window above)
            scores.append(torch.einsum("bhnid,bhkd->bhnik", qb, k[:, :, :g]))  # [B,H,nb,b,g]
            allowed.append(mask[:, None, None, None, :g])
        probs, has_key = softmax_over_key_sets(scores, allowed, p)
        out = probs[0] @ vw
        if g:
            out = out + torch.einsum("bhnik,bhkd->bhnid", probs[1], v[:, :, :g])
        out = from_blocks(out.masked_fill(~has_key, 0.0), n)
        if g:  # global queries: full rows over every key
            out = torch.cat([full_rows(q[:, :, :g], k, v, mask, p), out[:, :, g:]], dim=2)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}, global_tokens={self.global_tokens}"
