"""Long-Short Transformer attention (Zhu et al. 2021, "Long-Short Transformer: Efficient
Transformers for Language and Vision"), the bidirectional (non-causal) version.

Each query attends, in ONE softmax, to two sets of keys/values:

* short-term: a segment-wise sliding window. The sequence is cut into segments of
  ``s = max(w // 2, 1)`` positions (``w`` = ``window``); a query in segment ``u`` reads the keys
  of segments ``u - 1, u, u + 1`` (its segment and ``w / 2`` on each side): ``O(n * w)``.
* long-term: a dynamic low-rank projection of all keys/values. Per head,
  ``P = softmax(K W_p)`` [N, r] with the softmax over the length and padded keys masked
  (``P = 0`` there), ``K_bar = P^T K``, ``V_bar = P^T V`` [r, Dh]: ``O(n * r)``.

DualLN (the paper's eq. for ``K_bar``/``V_bar``): the short keys/values pass through one
LayerNorm ``LN_S`` and the projected long keys/values through another, ``LN_L`` (each over the
head dimension, shared by heads, the same norm for keys and values), which aligns the scales
of the two sets before they share a softmax. ``W_p`` [H, Dh, r] is the only other parameter.
Appended padding changes nothing: segments are anchored at position 0 and ``P`` is 0 on
padded keys.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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


def dynamic_projection(k: Tensor, w_p: Tensor, mask: Tensor) -> Tensor:
    """P = softmax over the length of ``K W_p``, 0 on padded keys.

    k [B, H, N, Dh], w_p [H, Dh, r], mask [B, N] bool -> P [B, H, N, r] (columns sum to 1,
    or are all 0 for a sequence without real tokens).
    """
    logits = torch.einsum("bhnd,hdr->bhnr", k, w_p.to(k.dtype))
    real = mask[:, None, :, None]
    logits = logits.masked_fill(~real, torch.finfo(logits.dtype).min)
    p = logits.softmax(dim=2, dtype=torch.promote_types(k.dtype, torch.float32)).to(k.dtype)
    return p.masked_fill(~real, 0.0)


@register("longshort")
class LongShortAttention(ProjectedAttention):
    """Segment-wise sliding window + dynamic low-rank projection, one softmax, DualLN.

    Options:
        window: short-term window ``w`` (int >= 1; default 128): segments of ``w // 2``
            positions, each query reads its own segment and both neighbours.
        rank: ``r``, number of projected long-term keys/values per head (int >= 1; default 32).
    """

    exact = False
    complexity = "n*(w+r)"
    test_options = {"window": 16, "rank": 4}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        window: int = 128,
        rank: int = 32,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.window = check_int("window", window, 1)
        self.rank = check_int("rank", rank, 1)
        self.w_p = nn.Parameter(torch.empty(heads, self.head_dim, rank))
        nn.init.normal_(self.w_p, std=self.head_dim**-0.5)
        self.norm_short = nn.LayerNorm(self.head_dim)  # LN_S
        self.norm_long = nn.LayerNorm(self.head_dim)  # LN_L

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n = q.shape[2]
        p = dynamic_projection(k, self.w_p, mask)  # [B, H, N, r]
        k_long = self.norm_long(p.transpose(-2, -1) @ k)  # [B, H, r, Dh]
        v_long = self.norm_long(p.transpose(-2, -1) @ v)
        k_short, v_short = self.norm_short(k), self.norm_short(v)
        s = min(max(self.window // 2, 1), n)
        qb, kb, vb = (to_blocks(t, s) for t in (q * self.head_dim**-0.5, k_short, v_short))
        idx, kpos = neighbour_blocks(qb.shape[2], s, (-1, 0, 1), q.device)  # [nb, 3s]
        k_win, v_win = gather_blocks(kb, idx), gather_blocks(vb, idx)  # [B, H, nb, 3s, Dh]
        allowed_short = (kpos >= 0) & gather_blocks(mask_blocks(mask, s), idx)
        has_real = mask.any(-1)[:, None, None, None, None]  # long keys exist iff a real token
        scores = [
            qb @ k_win.transpose(-2, -1),  # [B, H, nb, s, 3s]
            torch.einsum("bhnid,bhrd->bhnir", qb, k_long),  # [B, H, nb, s, r]
        ]
        allowed = [allowed_short[:, :, :, None, :], has_real]
        probs, has_key = softmax_over_key_sets(scores, allowed, dropout_p(self))
        out = probs[0] @ v_win + torch.einsum("bhnir,bhrd->bhnid", probs[1], v_long)
        return from_blocks(out.masked_fill(~has_key, 0.0), n)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}, rank={self.rank}"
