"""Learning-rate schedules of the LRA code (``create_learning_rate_scheduler`` factors).

Each returns the learning rate at optimiser step ``t`` (1-based: the first update uses t=1).
"""

from __future__ import annotations

import math


def rsqrt_warmup(t: int, base: float, warmup: int) -> float:
    """``constant * linear_warmup * rsqrt_decay``: base * min(1, t/w) / sqrt(max(t, w))."""
    warm = min(1.0, t / warmup) if warmup > 0 else 1.0
    return base * warm / math.sqrt(max(t, warmup, 1))


def cosine_warmup(t: int, base: float, warmup: int, total: int) -> float:
    """``constant * linear_warmup * cosine_decay``: linear warm-up, then half a cosine to 0."""
    warm = min(1.0, t / warmup) if warmup > 0 else 1.0
    progress = max(0.0, (t - warmup) / max(1, total - warmup))
    return base * warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def constant_warmup(t: int, base: float, warmup: int) -> float:
    """base * min(1, t/w)."""
    return base * (min(1.0, t / warmup) if warmup > 0 else 1.0)


SCHEDULES = ("rsqrt", "cosine", "constant")


def lr_at(t: int, schedule: str, base: float, warmup: int, total: int) -> float:
    """Learning rate of ``schedule`` at step ``t``."""
    if schedule == "rsqrt":
        return rsqrt_warmup(t, base, warmup)
    if schedule == "cosine":
        return cosine_warmup(t, base, warmup, total)
    if schedule == "constant":
        return constant_warmup(t, base, warmup)
    raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
