"""FNet: Fourier token mixing instead of attention.

Lee-Thorp et al. 2022, "FNet: Mixing Tokens with Fourier Transforms", eq. 3: the attention
sublayer becomes ``y = Re(FFT_seq(FFT_hidden(x)))``, a 2-D discrete Fourier transform of the
``[N, D]`` block keeping the real part. No parameters, no q/k/v, ``O(N log N)`` per channel.

Padding: padded positions are zeroed and the transform along the sequence runs over each
sequence's REAL tokens only (compacted in order, grouped by real length, one FFT per distinct
length), so appended padding changes no real output and padded positions output 0.
Departure: the original mixes over the padded length (zeros included), which makes the output
depend on how much padding a batch carries (and on ``trainer.trim_padding``); over the real
length it is the FNet of the unpadded sequence. ``dropout`` is accepted for the common
interface and unused. Parameters: FNet removes the attention projections, so the model has
~30 % fewer parameters than the Transformer at the same recipe (the paper's design; outside
LRA's 10 % rule by construction).
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.base import Attention, register


def fourier_mix(x: Tensor, mask: Tensor) -> Tensor:
    """Re(DFT over the real tokens of DFT over hidden): x [B, N, D], mask [B, N] -> [B, N, D].

    Padded positions give 0; a sequence without real tokens gives all zeros.
    """
    b, n, d = x.shape
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # real tokens first
    idx = order[..., None].expand(b, n, d)
    compact = x.gather(1, idx)
    lengths = mask.sum(-1)
    mixed = torch.zeros_like(compact)
    for length in lengths.unique().tolist():
        if length == 0:
            continue
        rows = (lengths == length).nonzero().squeeze(1)
        block = compact[rows, :length]
        wide = torch.promote_types(block.dtype, torch.float32)  # no half-precision FFTs
        mixed[rows, :length] = torch.fft.fft2(block.to(wide), dim=(-2, -1)).real.to(x.dtype)
    return torch.zeros_like(x).scatter(1, idx, mixed)


@register("fnet")
class FNetMixing(Attention):
    """Parameter-free Fourier token mixing (overrides ``forward``; no ``attend``).

    Options: none (``dropout`` and ``qkv_dim`` are accepted and unused).
    """

    exact = False
    complexity = "n log n"
    param_exception = (
        "no attention parameters at all (the paper's design): -30 % at the Text recipe"
    )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool -> [B, N, D]."""
        wide = torch.promote_types(x.dtype, torch.float32)  # FFTs run in >= float32
        return fourier_mix(x.to(wide).masked_fill(~mask[..., None], 0.0), mask).to(x.dtype)
