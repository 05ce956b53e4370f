"""Compressive Transformer: XL memory plus a compressed memory of older states.

Rae et al. 2020, "Compressive Transformers for Long-Range Sequence Modelling". As in
Transformer-XL (``models.segments``), segments of ``segment_len`` tokens attend to the cached
states of the ``mem_len`` positions before them; states that fall out of that memory are not
discarded but compressed by a strided 1-D convolution ``f_c`` (kernel = stride = ``c``, the
compression rate) into ``1/c`` as many slots, of which the newest ``cmem_len`` are kept. Each
segment attends to ``[compressed memory; memory; segment]`` with XL's relative scores (the
compressed slots are indexed as positions before the memory).

Memory and compressed memory are stop-gradient: the task loss never trains ``f_c``. ``f_c``
is trained only by the attention-reconstruction loss (the paper's Algorithm 2), returned by
:meth:`aux_loss`: for every segment that evicts states ``old``, with everything but ``f_c``
detached (the segment's states ``h``, ``old`` and the attention weights),

    || attn(h, old) - attn(h, f_c(old)) ||^2,    attn(h, m) = softmax((h W_q)(m W_k)^T / sqrt(Dh)) (m W_v)

(content attention per head, no positional terms), averaged over real queries and features
and summed over segments; the classifier sums it over layers and the loop adds it.

In this one-pass form a position is evicted once the memory window has passed it: segment
``s`` sees the slots of positions ``< sL - m`` (newest ``cmem_len``), exactly the paper's FIFO
when ``L``, ``m`` are multiples of ``c`` (required). Padded states are zeroed before
compression; a slot is real if any of its ``c`` source positions is. Departures: as ``xl``
(bidirectional segments, absolute positions kept, mean pooling); ``f_c`` compresses the
states the attention sees (after the block's pre-LayerNorm). Cost ``O(N * (L + m + cm))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import register
from models.blocks import check_int
from models.segments import SegmentRecurrentAttention, softmax_dtype, windows


@register("compressive")
class CompressiveAttention(SegmentRecurrentAttention):
    """Attention over ``[compressed memory; memory; segment]`` + attention-reconstruction loss.

    Options:
        segment_len: tokens per segment ``L`` (default 256; a multiple of ``compression_rate``).
        mem_len: memory positions ``m`` (default 256; a multiple of ``segment_len``).
        cmem_len: compressed slots kept ``cm`` (default 256; 0 = XL with a reconstruction loss).
        compression_rate: ``c`` (default 2): ``c`` evicted states -> one slot.
    """

    exact = False
    complexity = "n*(s+m+cm)"
    aux_only_params = ("compress",)  # trained by aux_loss() only, never by the task loss
    test_options = {"segment_len": 8, "mem_len": 8, "cmem_len": 8, "compression_rate": 2}
    param_exception = (
        "f_c (a dim x dim convolution per layer, trained by the reconstruction loss only) and "
        "XL's relative-position parameters: +22.6 % at the Text recipe, by design"
    )

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        qkv_dim: int | None = None,
        segment_len: int = 256,
        mem_len: int = 256,
        cmem_len: int = 256,
        compression_rate: int = 2,
    ):
        super().__init__(dim, heads, dropout, qkv_dim, segment_len, mem_len)
        self.cmem_len = check_int("cmem_len", cmem_len, 0)
        self.rate = check_int("compression_rate", compression_rate, 1)
        if self.segment_len % self.rate:
            raise ValueError(
                f"segment_len {segment_len} must be a multiple of compression_rate {self.rate}"
            )
        if self.mem_len % self.segment_len:
            raise ValueError(f"mem_len {mem_len} must be a multiple of segment_len {segment_len}")
        self.compress = nn.Conv1d(dim, dim, kernel_size=self.rate, stride=self.rate)  # f_c
        self._aux: Tensor | None = None

    def context(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """[compressed memory; memory] per segment; also computes the reconstruction loss."""
        mem, mem_mask = self.memory(x, mask)
        zeroed = x.masked_fill(~mask[..., None], 0.0)
        slots = self.compress(zeroed.transpose(1, 2)).transpose(1, 2)  # [B, N/c, D]
        slot_mask = mask.view(mask.shape[0], -1, self.rate).any(-1)  # [B, N/c]
        self._aux = self.reconstruction_loss(zeroed, mask, slots, slot_mask)
        s, seg = x.shape[1] // self.segment_len, self.segment_len
        ends = (torch.arange(s, device=x.device) * seg - self.mem_len) // self.rate
        cmem, cmem_mask = windows(slots.detach(), slot_mask, ends - self.cmem_len, self.cmem_len)
        return torch.cat([cmem, mem], dim=2), torch.cat([cmem_mask, mem_mask], dim=2)

    def no_context(self, x: Tensor) -> Tensor:
        """Empty context; nothing is evicted, so the reconstruction loss is a zero that keeps
        ``f_c`` in the graph (as DDP expects)."""
        self._aux = sum(p.sum() for p in self.compress.parameters()) * 0.0
        return super().no_context(x)

    def reconstruction_loss(
        self, x: Tensor, mask: Tensor, slots: Tensor, slot_mask: Tensor
    ) -> Tensor:
        """Attention-reconstruction loss (Rae et al. 2020, Alg. 2) over all evicting segments.

        x [B, S*L, D] detached states (padding zeroed), mask [B, S*L]; slots [B, S*L/c, D]
        (the only tensor with a graph, into ``f_c``), slot_mask [B, S*L/c].
        """
        bsz, seg = x.shape[0], self.segment_len
        s, lag = x.shape[1] // seg, self.mem_len // seg  # segment s evicts segment s - lag
        if s <= lag:  # nothing evicted: zero, with f_c still in the graph (as DDP expects)
            return slots.sum() * 0.0
        per = seg // self.rate
        h = x.view(bsz, s, seg, -1)[:, lag:]  # queries [B, S', L, D]
        h_mask = mask.view(bsz, s, seg)[:, lag:]
        old = x.view(bsz, s, seg, -1)[:, : s - lag]
        old_mask = mask.view(bsz, s, seg)[:, : s - lag]
        new = slots.view(bsz, s, per, -1)[:, : s - lag]
        new_mask = slot_mask.view(bsz, s, per)[:, : s - lag]
        w, b, d = self.to_qkv.weight.detach(), self.to_qkv.bias.detach(), self.qkv_dim

        def heads(t: Tensor) -> Tensor:  # [B, S', M, H*Dh] -> [B, S', H, M, Dh]
            return t.view(*t.shape[:3], self.heads, self.head_dim).transpose(2, 3)

        q = heads(F.linear(h, w[:d], b[:d])) * self.head_dim**-0.5

        def attend(m: Tensor, m_mask: Tensor) -> Tensor:
            k = heads(F.linear(m, w[d : 2 * d], b[d : 2 * d]))
            v = heads(F.linear(m, w[2 * d :], b[2 * d :]))
            scores = (q @ k.transpose(-2, -1)).to(softmax_dtype(x.dtype))
            scores = scores.masked_fill(~m_mask[:, :, None, None, :], torch.finfo(scores.dtype).min)
            out = scores.softmax(-1).to(x.dtype) @ v  # [B, S', H, L, Dh]
            return out.masked_fill(~m_mask.any(-1)[:, :, None, None, None], 0.0)

        diff = (attend(old, old_mask) - attend(new, new_mask)).pow(2).mean(-1)  # [B, S', H, L]
        real = h_mask[:, :, None, :].expand_as(diff)
        per_segment = diff.masked_fill(~real, 0.0).sum((0, 2, 3))
        count = real.sum((0, 2, 3)).clamp(min=1)
        return (per_segment / count).sum()

    def aux_loss(self) -> Tensor | None:
        """Attention-reconstruction loss of the last forward (0-dim; 0 without eviction)."""
        return self._aux

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, cmem_len={self.cmem_len}, compression_rate={self.rate}"
