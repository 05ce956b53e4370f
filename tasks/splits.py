"""Train/val hold-out splits, label checks and per-split summaries shared by the HF-backed tasks."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_split_keys(val_size: Any, seed: Any) -> None:
    """``val_size`` must be a positive int and ``seed`` an int or None (``ValueError``)."""
    if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 1:
        raise ValueError(f"val_size must be a positive int, got {val_size!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"split_seed must be an int or null, got {seed!r}")


def holdout_split(n: int, val_size: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train [n - val_size], val [val_size])`` of a hold-out split, each sorted.

    ``seed`` None takes the last ``val_size`` rows (TFDS-style slicing ``[:-k]``/``[-k:]``);
    otherwise a ``numpy.random.default_rng(seed)`` permutation picks them.
    """
    check_split_keys(val_size, seed)
    if val_size >= n:
        raise ValueError(f"val_size {val_size} leaves no training data (train has {n} rows)")
    if seed is None:
        return np.arange(n - val_size), np.arange(n - val_size, n)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def split_summary(lengths: np.ndarray, labels: np.ndarray, num_classes: int, **extra) -> dict:
    """Facts about one tokenised split kept in ``spec.json``."""
    return {
        "count": int(len(labels)),
        "max_length": int(lengths.max(initial=0)),
        "mean_length": round(float(lengths.mean()), 1) if len(lengths) else None,
        "label_counts": np.bincount(labels, minlength=num_classes).tolist(),
        **extra,
    }


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """``labels`` as int64; a label outside ``0..num_classes-1`` is a ``ValueError`` naming
    ``where`` (file or dataset) and the row."""
    labels = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise ValueError(
            f"{where}: label {int(labels[bad[0]])} at row {int(bad[0])} is not in "
            f"0..{num_classes - 1}"
        )
    return labels
