"""Reformer attention: LSH bucketing with shared query/key, sorted chunks, several hash rounds.

Kitaev et al. 2020, "Reformer: The Efficient Transformer" (ICLR), §2:

* shared QK: keys are the queries, length-normalised, and the logit is ``q_i . q_j / |q_j|``
  with no further ``1/sqrt(Dh)``; values separate. This is the original's definition: the
  paper sets ``k_j = q_j / |q_j|`` and omits the scale (§2), and trax
  (``trax/layers/research/efficient_attention.py`` @ 00a9b13, ``attend``) RMS-normalises the
  keys and then divides them by ``sqrt(Dh)``, i.e. unit-length keys. The query's norm is a
  learned temperature. (The PyTorch port ``reformer-pytorch`` scales unit keys by
  ``Dh^-0.5`` again, ``sqrt(Dh)`` times smaller logits; LRA's own ``reformer_attention.py``
  @ a2e5057 multiplies by ``sqrt(Dh)`` and normalises nothing: neither is followed here);
* angular LSH: ``h(x) = argmax([x R ; -x R])`` with a random rotation ``R`` [Dh, nbk/2] per
  round, so ``nbk`` buckets; ``nbk`` is set from each sequence's real length ``L`` as
  ``ceil(L / bucket_size)`` rounded up to an even number (buckets about a chunk long);
* the tokens are sorted by (bucket, position), cut into chunks of ``bucket_size`` and every
  query attends to the keys of its own chunk and of the previous chunk (``O(n b)``);
* a token does not attend to itself unless it has no other key (shared QK would otherwise
  always favour itself): its own logit is replaced by ``-5e4`` (trax subtracts ``1e5``, which
  overflows fp16; either leaves it a weight of 0 when another key exists);
* ``n_hashes`` rounds with independent rotations attend over the union of the rounds' key
  sets: each round's outputs are weighted by its log-partition function and a logit is
  lowered by ``log`` of the number of rounds in which that key is in the query's chunk
  window, so a key found in several rounds is counted once. One chunk covering the sequence
  (``bucket_size >= n``) is therefore exact shared-QK softmax attention with the no-self
  rule, for any ``n_hashes``.

Padding: padded tokens go to a bucket after every real bucket, so they are sorted behind all
real tokens and real chunks never change with the amount of padding; they are masked as keys.
Each round is chunked on its own (the first chunk has no previous chunk; the original
concatenates the rounds and wraps around). Lengths that are not a multiple of the chunk are
padded internally. Rotations are drawn fresh for every training call (global RNG) and are a
fixed, seeded draw in eval (the seed travels in the ``state_dict``), so eval is deterministic.

Cost per round: attention ``O(n b)``; hashing ``O(n nbk) = O(n^2 / b)``, smaller than the
attention term while ``n < 2 b^2`` (8K tokens for ``b = 64``); never an ``n x n`` tensor.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ProjectedAttention, dropout_p, register
from models.kernels import check_int

SELF_LOGIT = -5e4  # replaces a token's logit for itself (finite in fp16 too)


def look_back(x: Tensor) -> Tensor:
    """Chunks [..., nc, c, *] -> [..., nc, 2c, *]: own chunk, then the previous one.

    The first chunk's "previous chunk" is a copy of itself; callers mask it out.
    """
    prev = torch.cat([x[..., :1, :, :], x[..., :-1, :, :]], dim=-3)
    return torch.cat([x, prev], dim=-2)


@register("reformer")
class ReformerAttention(ProjectedAttention):
    """LSH attention with shared QK (Kitaev et al. 2020).

    Options:
        bucket_size: chunk length ``b``; each query reads ``2 b`` keys per round (int >= 1).
        n_hashes: hash rounds (int >= 1; LRA default 1).
    """

    exact = False
    complexity = "n*b+n^2/b"
    projections = "qv"  # shared QK: one projection for queries/keys, one for values
    test_options = {"bucket_size": 16, "n_hashes": 2}

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        bucket_size: int = 64,
        n_hashes: int = 1,
    ):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.bucket_size = check_int("bucket_size", bucket_size, 1)
        self.n_hashes = check_int("n_hashes", n_hashes, 1)
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item())  # eval rotations
        self._eval_rotations: dict[tuple, Tensor] = {}

    # ------------------------------------------------------------------ hashing
    def rotations(self, half: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Random rotations [n_hashes, Dh, half]: fresh in training, seeded in eval.

        In eval column ``j`` comes from its own seeded generator, so a column does not
        depend on how many columns are drawn (a sequence's buckets do not depend on the
        other sequences of the batch).
        """
        shape = (self.n_hashes, self.head_dim)
        if self.training:
            return torch.randn(*shape, half, device=device, dtype=dtype)
        key = (half, str(device), dtype)
        if key not in self._eval_rotations:
            cols = [
                torch.randn(*shape, generator=torch.Generator().manual_seed(self.seed + 7919 * j))
                for j in range(half)
            ]
            self._eval_rotations[key] = torch.stack(cols, dim=-1).to(device=device, dtype=dtype)
        return self._eval_rotations[key]

    def buckets(self, q: Tensor, mask: Tensor) -> Tensor:
        """Bucket ids [B, H, n_hashes, N] (long); padded tokens get the largest id.

        Sequence ``i`` with ``L_i`` real tokens uses ``nbk_i = 2 * ceil(L_i / (2 b))`` buckets:
        its argmax runs over the first ``nbk_i / 2`` rotation columns and their negatives.
        """
        lengths = mask.sum(-1)  # [B]
        half_i = torch.ceil(lengths / (2 * self.bucket_size)).long().clamp(min=1)  # [B]
        half = int(half_i.max())
        wide = torch.promote_types(q.dtype, torch.float32)  # bf16/fp16 ties would move buckets
        rot = self.rotations(half, q.device, wide)  # [R, Dh, half]
        with torch.autocast(q.device.type, enabled=False):
            proj = torch.einsum("bhnd,rdk->bhrnk", q.to(wide), rot)  # [B, H, R, N, half]
        unused = torch.arange(half, device=q.device) >= half_i[:, None]  # [B, half]
        both = torch.cat([proj, -proj], dim=-1)  # [B, H, R, N, 2 * half]
        both = both.masked_fill(unused.repeat(1, 2)[:, None, None, None, :], float("-inf"))
        ids = both.argmax(dim=-1)  # column: k for +xR_k, half + k for -xR_k
        own = half_i[:, None, None, None]  # ids of sequence i: [0, 2 * half_i)
        ids = torch.where(ids >= half, ids - half + own, ids)
        return ids.masked_fill(~mask[:, None, None, :], 2 * half)

    # ------------------------------------------------------------------ attention
    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool -> [B, N, D].

        Under autocast the shared QK/V projection still runs in (at least) float32: the buckets
        are an argmax over ``q``'s rotations, and a bf16-rounded ``q`` moves tokens across
        bucket borders (5 % of the output at the conformance setting); the attention matmuls
        keep autocast's dtype.
        """
        wide = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            q, v = self.project(x.to(wide))
        return self.to_out(self.merge_heads(self.attend_shared(q, v, mask)))

    def attend_shared(self, q: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Shared-QK LSH attention: q, v [B, H, N, Dh], mask [B, N] -> [B, H, N, Dh]."""
        bsz, heads, n, dh = q.shape
        c, r = self.bucket_size, self.n_hashes
        npad = math.ceil(n / c) * c
        q, v = (F.pad(t, (0, 0, 0, npad - n)) for t in (q, v))
        mask = F.pad(mask, (0, npad - n), value=False)
        nc = npad // c

        pos = torch.arange(npad, device=q.device)
        ids = self.buckets(q, mask)  # [B, H, R, Np]
        order = (ids * npad + pos).argsort(dim=-1)  # sorted slot -> token  [B, H, R, Np]
        slot = order.argsort(dim=-1)  # token -> sorted slot
        chunk_of = slot // c  # token -> its chunk, per round  [B, H, R, Np]

        def gather(t: Tensor) -> Tensor:  # [B, H, Np, Dh] -> sorted [B, H, R, nc, c, Dh]
            idx = order[..., None].expand(-1, -1, -1, -1, t.shape[-1])
            return t[:, :, None].expand(-1, -1, r, -1, -1).gather(3, idx).unflatten(3, (nc, c))

        k = F.normalize(q, dim=-1)  # logit q_i . q_j / |q_j|
        qs, ks, vs = gather(q), look_back(gather(k)), look_back(gather(v))
        tq = order.unflatten(-1, (nc, c))  # token ids of the queries  [B, H, R, nc, c]
        tk = look_back(tq[..., None]).squeeze(-1)  # token ids of the keys  [B, H, R, nc, 2c]
        real = mask[:, None, None, :].expand(-1, heads, r, -1)
        key_ok = real.gather(3, tk.flatten(3)).view_as(tk)
        key_ok[..., 0, c:] = False  # the first chunk has no previous chunk

        logits = qs @ ks.transpose(-2, -1)  # [B, H, R, nc, c, 2c]
        logits = logits.masked_fill(tq[..., :, None] == tk[..., None, :], SELF_LOGIT)
        if r > 1:  # count each key once per query over the rounds
            count = torch.zeros_like(logits)
            for rr in range(r):
                cq = chunk_of[:, :, rr, None].expand(-1, -1, r, -1)
                cq = cq.gather(3, tq.flatten(3)).view_as(tq)[..., :, None]
                ck = chunk_of[:, :, rr, None].expand(-1, -1, r, -1)
                ck = ck.gather(3, tk.flatten(3)).view_as(tk)[..., None, :]
                count += ((cq - ck == 0) | (cq - ck == 1)).to(count.dtype)
            logits = logits - count.clamp(min=1).log()
        wide = torch.promote_types(logits.dtype, torch.float32)
        logits = logits.to(wide).masked_fill(~key_ok[..., None, :], torch.finfo(wide).min)
        lse = logits.logsumexp(dim=-1, keepdim=True)  # [B, H, R, nc, c, 1]
        probs = (logits - lse).exp().to(v.dtype)
        p = dropout_p(self)
        if p > 0:
            probs = F.dropout(probs, p=p)
        out = (probs @ vs).flatten(3, 4)  # sorted order [B, H, R, Np, Dh]
        lse = lse.flatten(3, 5)  # [B, H, R, Np]

        # back to token order, then combine the rounds by their log-partition functions
        out = out.gather(3, slot[..., None].expand(-1, -1, -1, -1, dh))
        weights = lse.gather(3, slot).softmax(dim=2).to(v.dtype)  # [B, H, R, Np]
        return (out * weights[..., None]).sum(dim=2)[:, :, :n]

    def get_extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self._eval_rotations.clear()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bucket_size={self.bucket_size}, n_hashes={self.n_hashes}"
