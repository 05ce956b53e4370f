"""Where and how a model computes: device, precision, autocast, optimiser, peak memory.

One owner for what the training loop (:mod:`lra.run.loop`) and the benchmark
(:mod:`lra.bench.worker`) both need, so a timed benchmark step runs exactly like a training step.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterable, Mapping
from typing import Any

import torch

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str, local_rank: int = 0, key: str = "trainer.device") -> torch.device:
    """``auto`` = CUDA if available, else CPU; a bare ``cuda`` means GPU ``local_rank``.

    Raises ``ValueError`` naming ``key`` for a device that is not valid or not available.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"{key} must be {DEVICE_CHOICES}; got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{key} must be {DEVICE_CHOICES}; got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key}={name} but CUDA is not available; use {key}=cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def resolve_precision(
    name: str, device: torch.device, key: str = "trainer.precision"
) -> torch.dtype:
    """``auto`` = bf16 on CUDA, fp32 on CPU; otherwise one of ``PRECISIONS``."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in PRECISIONS:
        raise ValueError(f"{key} must be one of auto, {', '.join(PRECISIONS)}; got {name!r}")
    return PRECISIONS[name]


def precision_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``bfloat16`` (the form records and benchmark rows store)."""
    return str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context for ``dtype`` (a no-op for fp32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def adamw(
    params: Iterable[torch.nn.Parameter], optim: Mapping[str, Any], lr: float = 1.0
) -> torch.optim.AdamW:
    """AdamW with the recipe's ``betas``, ``eps`` and decoupled ``weight_decay``.

    The loop passes ``lr=1.0`` because its schedule returns absolute learning rates.
    """
    return torch.optim.AdamW(
        params,
        lr=lr,
        betas=tuple(optim.get("betas", (0.9, 0.999))),
        eps=float(optim.get("eps", 1e-8)),
        weight_decay=float(optim.get("weight_decay", 0.0)),
    )


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Every tensor of ``batch`` on ``device`` (non-blocking copies from pinned memory)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (a no-op on CPU), so wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def maybe_compile(module: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``torch.compile(module)`` (default inductor backend, graph breaks allowed), or the
    module itself. The compiled wrapper shares the module's parameters and state dict."""
    return torch.compile(module) if enabled else module


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process so far (0 before any): a step during
    which this grows spent part of its time compiling."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return 0
    return int(counters["stats"]["unique_graphs"])


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
