"""Helpers shared by the attention methods.

* option checks that name the bad option and say what is valid;
* ``masked_softmax``: softmax over allowed keys only, a row without any allowed key gives
  probabilities 0 (output 0), never NaN;
* ``softmax_over_key_sets``: one softmax over several key sets (a block's own keys, its
  neighbours, global keys...), scores masked in place, no probability copies; the caller
  zeroes the rows without keys (the block-sparse and windowed methods);
* ``no_autocast``: where numerically delicate steps leave bf16/fp16;
* ``linear_attention``: the O(n) contraction of kernelised attention
  (Katharopoulos et al. 2020, eq. 5; Choromanski et al. 2021, FAVOR+ eq. 8):

      out_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j))

  where the sums run over real keys only: padded keys' features are zeroed before both the
  numerator and the normaliser, so padding never reaches a real query.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


# --------------------------------------------------------------------------- options
def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; otherwise ``ValueError`` naming option ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"option {name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    """``value`` as a float ``> 0``; otherwise ``ValueError`` naming option ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"option {name} must be a number > 0, got {value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; otherwise ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"option {name} must be one of {list(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def check_length(n: int, max_len: int, method: str) -> None:
    """A method with a fixed ``max_len`` refuses longer inputs with a clear error."""
    if n > max_len:
        raise ValueError(
            f"{method}: input length {n} is longer than max_len {max_len}; build the method "
            f"with max_len >= {n} (the backbone passes the task's max_len)"
        )


# --------------------------------------------------------------------------- softmax
def masked_softmax(scores: Tensor, allowed: Tensor, dropout: float = 0.0) -> Tensor:
    """Softmax of ``scores`` [..., K] over keys where ``allowed`` (broadcastable bool) is True.

    Runs in at least float32 and casts back. Rows without any allowed key get all-zero
    probabilities. ``dropout`` (training only; pass 0 in eval) drops probabilities.
    """
    wide = torch.promote_types(scores.dtype, torch.float32)
    logits = scores.to(wide).masked_fill(~allowed, torch.finfo(wide).min)
    probs = logits.softmax(dim=-1)
    probs = probs.masked_fill(~allowed.any(dim=-1, keepdim=True), 0.0).to(scores.dtype)
    if dropout > 0:
        probs = F.dropout(probs, p=dropout)
    return probs


def may_have_padding(mask: Tensor) -> bool:
    """False only when ``mask`` (True = real) is all real, so that a method may take its
    unmasked path; always True under ``torch.compile``, so that the compiled graph has no
    data-dependent branch (it keeps the masked path, correct with or without padding)."""
    return torch.compiler.is_compiling() or not bool(mask.all())


def softmax_over_key_sets(
    scores: Sequence[Tensor], allowed: Sequence[Tensor], dropout: float = 0.0
) -> tuple[list[Tensor], Tensor]:
    """One softmax over the concatenation of several key sets.

    Args:
        scores: per key set, [..., K_i] (same leading shape); overwritten in place (pass fresh
            products such as ``q @ k^T``, whose backward does not need them).
        allowed: per key set, a bool mask broadcastable to its scores (True = may attend).
        dropout: attention-dropout probability applied to the probabilities (0 = none).

    Returns:
        probs: per key set, [..., K_i].
        has_key: [..., 1] bool (broadcastable), False for a row with no allowed key in any
            set; its probabilities are finite but meaningless, so callers zero its output.

    The softmax runs in at least float32 (then casts back), as fused attention kernels do.
    """
    sizes = [s.shape[-1] for s in scores]
    neg = torch.finfo(scores[0].dtype).min  # finite: a row without keys stays finite
    masked = [s.masked_fill_(~a, neg) for s, a in zip(scores, allowed, strict=True)]
    logits = masked[0] if len(masked) == 1 else torch.cat(masked, dim=-1)
    wide = torch.promote_types(logits.dtype, torch.float32)
    probs = logits.softmax(dim=-1, dtype=wide).to(logits.dtype)
    if dropout > 0:
        probs = F.dropout(probs, p=dropout)
    has_key = functools.reduce(torch.logical_or, (a.any(-1, keepdim=True) for a in allowed))
    if len(sizes) == 1:  # not split: torch 2.13's CPU inductor mis-derives the gradient of
        return [probs], has_key  # a one-piece split followed by a matmul (test_softmax_methods)
    return list(probs.split(sizes, dim=-1)), has_key


# --------------------------------------------------------------------------- precision
def no_autocast(device: torch.device):
    """Context in which autocast is off: numerically delicate steps (normalisers, kernel
    distances, pseudo-inverses, hashing) run in their inputs' dtype, not bf16/fp16."""
    return torch.autocast(device.type, enabled=False)


# --------------------------------------------------------------------------- linear attention
def linear_attention(
    phi_q: Tensor, phi_k: Tensor, v: Tensor, mask: Tensor, keys_zeroed: bool = False
) -> Tensor:
    """Normalised kernel attention in O(N * M * Dh), never building the N x N matrix.

    Args:
        phi_q: query features [B, H, N, M] (non-negative).
        phi_k: key features [B, H, N, M] (non-negative); padded rows are zeroed here, unless
            ``keys_zeroed`` says the caller's features are already 0 there.
        v: values [B, H, N, Dh].
        mask: [B, N] bool, True = real key.

    Returns:
        [B, H, N, Dh]: ``phi_q (phi_k^T v) / (phi_q . sum_j phi_k)``, computed in at least
        float32; a query whose normaliser is 0 (no real key) gets 0, not NaN.
    """
    wide = torch.promote_types(v.dtype, torch.float32)
    phi_q, phi_k, vw = phi_q.to(wide), phi_k.to(wide), v.to(wide)
    if not keys_zeroed:
        phi_k = phi_k.masked_fill(~mask[:, None, :, None], 0.0)
    kv = phi_k.transpose(-2, -1) @ vw  # [B, H, M, Dh]
    num = phi_q @ kv  # [B, H, N, Dh]
    with no_autocast(v.device):  # the normaliser in float32 even under autocast
        den = phi_q @ phi_k.sum(dim=2)[..., None]  # [B, H, N, 1]
    den = torch.where(den > 0, den, torch.ones_like(den))  # no real key: num = 0, out 0
    return (num / den).to(v.dtype)


__all__ = [
    "check_choice",
    "check_int",
    "check_length",
    "check_positive_float",
    "linear_attention",
    "masked_softmax",
    "softmax_over_key_sets",
    "no_autocast",
]
