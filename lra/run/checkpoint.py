"""Resumable checkpoints: atomic writes of ``last.pt``/``best.pt`` and the RNG state in them.

``last.pt`` holds everything a resumed run needs to continue as if never stopped: weights,
optimiser, schedule, grad scaler, the loop's progress and the RNG states (per rank under DDP).
A checkpoint carries the config hash of its run and is refused by a run of another config.
Checkpoints hold tensors and plain Python values only and are loaded with
``torch.load(weights_only=True)``, so a crafted file in a run folder cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the way out."""


class CheckpointMismatch(CheckpointError):
    """``last.pt`` belongs to a run with another config."""


REQUIRED = ("config_hash", "model", "optimizer", "scheduler", "scaler", "state", "rng")


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a file, and
    a failed save (a full disk) removes the partial file and keeps the previous checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def load_weights(path: Path, device: torch.device) -> Any:
    """``torch.load(path, weights_only=True)``; an unreadable file is a :class:`CheckpointError`
    naming it (truncated, not a checkpoint, or holding objects other than tensors)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        raise CheckpointError(
            f"{path} cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            "it may be truncated or not an lra checkpoint: delete it, or start over with "
            "trainer.resume=false"
        ) from None


def load_checkpoint(path: Path, config_hash: str, device: torch.device) -> dict[str, Any]:
    """Read ``path`` (weights only) and check that it is a complete ``last.pt`` of a run of
    ``config_hash``."""
    ckpt = load_weights(path, device)
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path} is not a complete lra checkpoint (missing {missing}); delete it, or start "
            "over with trainer.resume=false"
        )
    if ckpt["config_hash"] != config_hash:
        raise CheckpointMismatch(
            f"{path} belongs to a run with another config (hash {ckpt['config_hash']} != "
            f"{config_hash}); use trainer.resume=false to start over or another hydra.run.dir"
        )
    return ckpt
