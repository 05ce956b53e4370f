"""Resumable checkpoints: atomic writes of ``last.pt``/``best.pt`` and the RNG state in them.

``last.pt`` holds everything a resumed run needs to continue as if never stopped: weights,
optimiser, schedule, grad scaler, the loop's progress and the RNG states (per rank under DDP).
A checkpoint carries the config hash of its run and is refused by a run of another config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class CheckpointMismatch(RuntimeError):
    """``last.pt`` belongs to a run with another config."""


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def rng_state() -> dict[str, Any]:
    """The torch CPU generator state and every CUDA generator's (None without CUDA)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_checkpoint(path: Path, config_hash: str, device: torch.device) -> dict[str, Any]:
    """Read ``path`` and check that it belongs to a run of ``config_hash``."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    if ckpt["config_hash"] != config_hash:
        raise CheckpointMismatch(
            f"{path} belongs to a run with another config (hash {ckpt['config_hash']} != "
            f"{config_hash}); use trainer.resume=false to start over or another hydra.run.dir"
        )
    return ckpt
