"""BigBird attention (Zaheer et al. 2020, "Big Bird: Transformers for Longer Sequences"),
the blocked ITC variant LRA ran: window + global + random key blocks.

The sequence is cut into ``nb`` blocks of ``b`` tokens (``block_size``; LRA default 64). With
``G = {0, nb - 1}`` (the first and last block are global, as in BigBird-ITC), query block ``u``
may attend to key block ``v`` iff

    u in G or v in G            (global blocks attend to, and are attended by, everything)
    or |u - v| <= 1             (three sliding blocks)
    or v in R[h, u]             (``random_blocks`` random blocks, per head ``h``).

``R[h, u]`` is drawn without replacement from the blocks that are neither global nor in the
window, so no key block is counted twice. Non-global query blocks read ``(5 + r)`` gathered
key blocks (``O(N * b * (5 + r))``); the two global query blocks get full rows (``O(b * N)``).

Random pattern: a function of ``(seed, nb)``, where ``seed`` is drawn from torch's RNG when the
module is built (so the run's seed fixes it, each layer differs) and saved in the
``state_dict`` (extra state) so a reloaded model keeps its pattern. It is the same in training
and evaluation, never redrawn (as in the LRA code, which seeds it once per layer).

Departures from the LRA code: random blocks are drawn from every eligible block (LRA draws
them from the first 1024 tokens only), attention dropout applies (LRA's sparse path drops
none), and any number of blocks works (fewer than three blocks: all global, full attention).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.blocks import (
    check_int,
    from_blocks,
    full_rows,
    gather_blocks,
    mask_blocks,
    num_blocks,
    to_blocks,
)
from models.kernels import softmax_over_key_sets


@register("bigbird")
class BigBirdAttention(ProjectedAttention):
    """Block-sparse attention: sliding, global (first and last block) and random key blocks.

    Options:
        block_size: tokens per block ``b`` (int >= 1; LRA default 64).
        random_blocks: random key blocks per query block and head ``r`` (int >= 0; LRA 3).
    """

    exact = False
    complexity = "n*b"
    length_dependent = True  # the last block is global and random blocks depend on n
    test_options = {"block_size": 8, "random_blocks": 2}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        block_size: int = 64,
        random_blocks: int = 3,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.block_size = check_int("block_size", block_size, 1)
        self.random_blocks = check_int("random_blocks", random_blocks, 0)
        self.seed = int(torch.randint(0, 2**31 - 1, ()))
        self._patterns: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    # ------------------------------------------------------------------ random pattern
    def random_pattern(self, nb: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """The random key blocks of every (head, query block) for a sequence of ``nb`` blocks.

        Returns:
            idx [H, nb, r] long (block ids), ok [H, nb, r] bool (False where fewer than ``r``
            blocks were eligible, and for the global query blocks, which read every key).
        """
        key = (nb, str(device))
        if key not in self._patterns:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + nb)
            r, blocks = self.random_blocks, torch.arange(nb)
            eligible = ((blocks[:, None] - blocks[None, :]).abs() > 1) & (blocks > 0)
            eligible &= blocks < nb - 1  # [nb (query), nb (key)]: outside window and G
            eligible[[0, -1]] = False  # global query blocks need no random keys
            # a uniform random subset of the eligible keys: the r largest of uniform noise
            noise = torch.rand(self.heads, nb, nb, generator=gen).masked_fill(~eligible, -1.0)
            top, idx = noise.topk(min(r, nb), dim=-1)
            self._patterns[key] = (idx.to(device), (top >= 0).to(device))
        return self._patterns[key]

    def get_extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self._patterns.clear()

    # ------------------------------------------------------------------ attention
    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        n, p, dev = q.shape[2], dropout_p(self), q.device
        b = min(self.block_size, n)
        nb = num_blocks(n, b)
        q = q * self.head_dim**-0.5
        if nb <= 2:  # every block is the first or the last, i.e. global: full attention
            return full_rows(q, k, v, mask, p)
        qb, kb, vb = (to_blocks(t, b) for t in (q, k, v))
        # key blocks of the non-global query blocks 1 .. nb-2: window, global, random
        window = torch.arange(1, nb - 1, device=dev)[:, None] + torch.arange(-1, 2, device=dev)
        window_ok = (window > 0) & (window < nb - 1)  # global blocks are read once, below
        glob = torch.tensor([0, nb - 1], device=dev).expand(nb - 2, 2)
        rand, rand_ok = (t[:, 1:-1] for t in self.random_pattern(nb, dev))  # [H, nb-2, r]
        heads = rand.shape[0]
        idx = torch.cat([window.expand(heads, -1, -1), glob.expand(heads, -1, -1), rand], -1)
        ok = torch.cat(
            [
                window_ok.expand(heads, -1, -1),
                torch.ones_like(glob, dtype=torch.bool).expand(heads, -1, -1),
                rand_ok,
            ],
            dim=-1,
        )  # [H, nb-2, M], M = 5 + r
        kg, vg = gather_blocks(kb, idx), gather_blocks(vb, idx)  # [B, H, nb-2, M*b, Dh]
        key_ok = gather_blocks(mask_blocks(mask, b), idx)  # [B, H, nb-2, M*b]
        allowed = (key_ok & ok.repeat_interleave(b, dim=-1))[:, :, :, None, :]
        (probs,), has_key = softmax_over_key_sets(
            [qb[:, :, 1:-1] @ kg.transpose(-2, -1)], [allowed], p
        )
        middle = (probs @ vg).masked_fill(~has_key, 0.0)  # [B, H, nb-2, b, Dh]
        # the first and last query blocks are global: full rows over every key
        ends = torch.cat([qb[:, :, 0], qb[:, :, -1]], dim=2)  # [B, H, 2b, Dh]
        rows = full_rows(ends, k, v, mask, p).unflatten(2, (2, b))  # [B, H, 2, b, Dh]
        return from_blocks(torch.cat([rows[:, :, :1], middle, rows[:, :, 1:]], dim=2), n)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, block_size={self.block_size}, "
            f"random_blocks={self.random_blocks}"
        )
