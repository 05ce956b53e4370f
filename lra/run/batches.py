"""Batches for the loop: a stateless, seeded epoch order (so a resumed run sees the same data)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from tasks.cache import ArraySplit


class EpochOrder:
    """Training order: a fresh seeded permutation per epoch, last partial batch dropped.

    ``indices(step)`` depends only on ``(seed, step)``: no iterator state to save or restore.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int):
        if num_examples < batch_size:
            raise ValueError(
                f"train split has {num_examples} examples, fewer than one batch of {batch_size}"
            )
        self.n, self.batch_size, self.seed = num_examples, batch_size, seed
        self.batches_per_epoch = num_examples // batch_size
        self._epoch, self._perm = -1, None

    def permutation(self, epoch: int, size: int) -> np.ndarray:
        """The seeded permutation of ``range(size)`` of ``epoch`` (the last one is kept)."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(size)
        return self._perm

    def indices(self, step: int) -> np.ndarray:
        """Example indices [batch_size] of optimiser step ``step`` (0-based)."""
        epoch, pos = divmod(step, self.batches_per_epoch)
        perm = self.permutation(epoch, self.n)
        return perm[pos * self.batch_size : (pos + 1) * self.batch_size]


class BatchOrder(EpochOrder):
    """Training order of ``quirks=lra`` on image tasks (:mod:`lra.quirks`): the split cut into
    fixed batches of consecutive examples (its stored order is already a seeded shuffle), their
    order permuted each epoch. ``indices(step)`` depends only on ``(seed, step)``.
    """

    def indices(self, step: int) -> np.ndarray:
        """Example indices [batch_size] of optimiser step ``step`` (0-based)."""
        epoch, pos = divmod(step, self.batches_per_epoch)
        start = int(self.permutation(epoch, self.batches_per_epoch)[pos]) * self.batch_size
        return np.arange(start, start + self.batch_size)


class StepBatches(Dataset):
    """Batch ``i`` is the training batch of step ``start + i``; lets a DataLoader prefetch."""

    def __init__(self, split: ArraySplit, order: EpochOrder, start: int, stop: int, trim: bool):
        self.split, self.order, self.start, self.stop, self.trim = split, order, start, stop, trim

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.split.get_batch(self.order.indices(self.start + i), trim=self.trim)


def train_loader(
    split: ArraySplit, order: EpochOrder, start: int, stop: int, trim: bool, num_workers: int
) -> torch.utils.data.DataLoader:
    """Batches of steps ``start .. stop-1`` in order, prefetched by ``num_workers`` processes."""
    return torch.utils.data.DataLoader(
        StepBatches(split, order, start, stop, trim),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        # its own generator: creating the iterator must not draw from the global RNG, or a
        # resumed run's dropout masks would shift against an uninterrupted run's
        generator=torch.Generator(),
    )


def eval_starts(
    num_examples: int, batch_size: int, max_batches: int | None = None, drop_last: bool = False
) -> range:
    """First example of each evaluation batch (its ``len`` is the number of batches)."""
    end = num_examples - num_examples % batch_size if drop_last else num_examples
    starts = range(0, end, batch_size)
    return starts if max_batches is None else starts[:max_batches]


def eval_batches(
    split: ArraySplit,
    batch_size: int,
    trim: bool,
    max_batches: int | None = None,
    drop_last: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """The split in stored order, in batches (the last one may be smaller, or is left out
    with ``drop_last``)."""
    for start in eval_starts(len(split), batch_size, max_batches, drop_last):
        yield split.get_batch(np.arange(start, min(start + batch_size, len(split))), trim=trim)
