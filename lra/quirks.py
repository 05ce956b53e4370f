"""``quirks=lra``: the original LRA pipeline's behaviours where ours deliberately differs.

The harness's default (``quirks=none``) fixes what the original code did by accident or by
convenience (README, "Departures from the original LRA pipeline"); ``quirks=lra`` puts those
behaviours back so a run reproduces the original pipeline. Which behaviours apply depends on
the task, as in the original's input pipelines (``google-research/long-range-arena``,
``lra_benchmarks/{image,matching}/input_pipeline.py``, ``models/*``; docs/LRA_PROTOCOL.md §1.7):

========================  ==============================================  ======================
behaviour                 the original                                    tasks
========================  ==============================================  ======================
``pixel_zero_is_padding`` the encoders' mask is ``inputs > 0``, so black   image, pathfinder,
                          pixels (value 0) are masked as padding           pathx
``mean_over_padding``     mean pooling divides by the full length,         all (mean pooling)
                          padded positions included
``projection_bias``       the attention's q/k/v/out projections have no    all
                          biases (False)
``last_checkpoint``       test accuracy is the last step's                 all
``drop_last_eval_batch``  eval drops the last partial batch, eval batches  image, pathfinder,
                          as large as the training batch                   pathx, retrieval
``batch_shuffle``         training batches are fixed groups of examples    image, pathfinder,
                          whose order is shuffled (``batch().shuffle()``)  pathx
========================  ==============================================  ======================

Batch shuffling (:class:`lra.run.batches.BatchOrder`): the original shuffles batches in a buffer
(256 batches for Image, 2,048 for Pathfinder); here the batch order is a fresh permutation every
epoch. A record carries the
switch in its config; ``lra-report`` gives such records their own protocol (``lra+quirks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHOICES = ("none", "lra")
IMAGE_TASKS = frozenset({"image", "pathfinder", "pathx"})
DROP_LAST_EVAL_TASKS = IMAGE_TASKS | {"retrieval"}


@dataclass(frozen=True)
class Quirks:
    """The original-pipeline behaviours that apply to one run (all off for ``quirks=none``)."""

    pixel_zero_is_padding: bool = False
    mean_over_padding: bool = False
    projection_bias: bool = True
    last_checkpoint: bool = False
    drop_last_eval_batch: bool = False
    batch_shuffle: bool = False

    @classmethod
    def of(cls, switch: str | None, task: str) -> Quirks:
        """The behaviours of ``quirks=<switch>`` for ``task``; ValueError naming the choices."""
        switch = switch or "none"
        if switch not in CHOICES:
            raise ValueError(f"quirks={switch!r} is not valid: must be one of {list(CHOICES)}")
        if switch == "none":
            return cls()
        return cls(
            pixel_zero_is_padding=task in IMAGE_TASKS,
            mean_over_padding=True,
            projection_bias=False,
            last_checkpoint=True,
            drop_last_eval_batch=task in DROP_LAST_EVAL_TASKS,
            batch_shuffle=task in IMAGE_TASKS,
        )

    def backbone(self, backbone: dict[str, Any]) -> dict[str, Any]:
        """The backbone recipe with the model-side behaviours set."""
        return {
            **backbone,
            "mean_over_padding": self.mean_over_padding,
            "projection_bias": self.projection_bias,
        }

    def batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A batch with the data-side behaviours applied (black pixels become padding)."""
        if not self.pixel_zero_is_padding:
            return batch
        return {**batch, "mask": batch["mask"] & (batch["input_ids"] != 0)}
