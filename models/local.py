"""Block-local attention: softmax attention inside non-overlapping blocks of ``block_size``.

The "Local Attention" baseline of LRA (Tay et al. 2021, "Long Range Arena", §3): the sequence
is cut into consecutive blocks of ``b`` tokens and every query attends only to the keys of its
own block, so time and memory are ``O(N * b)``. LRA's default block is 50 (``docs/LRA_PROTOCOL.md``
§1.5). A length that is not a multiple of ``b`` is padded internally; the padding is masked.

Pattern: query ``i`` may attend to key ``j`` iff ``i // b == j // b``.

Departure: the LRA JAX code reshapes ``[B, L]`` to ``[B, b, L / b]`` and attends over the
first axis, which groups positions ``L / b`` apart (strided, not contiguous) while its padding
mask is cut into contiguous blocks; we use the contiguous blocks the paper describes.
"""

from __future__ import annotations

from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import check_int, from_blocks, mask_blocks, to_blocks
from models.kernels import softmax_over_key_sets


@register("local")
class LocalAttention(ProjectedAttention):
    """Softmax attention within consecutive, non-overlapping blocks.

    Options:
        block_size: tokens per block ``b`` (int >= 1; LRA default 50). A block at least as
            long as the sequence makes this full softmax attention.
    """

    exact = False
    complexity = "n*b"
    test_options = {"block_size": 16}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        block_size: int = 50,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.block_size = check_int("block_size", block_size, 1)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n = q.shape[2]
        b = min(self.block_size, n)  # one block covers a short sequence: same pattern
        qb, kb, vb = (to_blocks(t, b) for t in (q * self.head_dim**-0.5, k, v))
        scores = qb @ kb.transpose(-2, -1)  # [B, H, nb, b, b]
        allowed = mask_blocks(mask, b)[:, :, :, None, :]  # [B, 1, nb, 1, b]
        (probs,), has_key = softmax_over_key_sets([scores], [allowed], dropout_p(self))
        return from_blocks((probs @ vb).masked_fill(~has_key, 0.0), n)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, block_size={self.block_size}"
