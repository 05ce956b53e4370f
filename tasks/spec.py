"""The contract a task declares once and every other part reads (model, loop, report)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """Shape of a task's inputs and outputs.

    Attributes:
        name: registry name of the task (``listops``, ``text``, ...).
        vocab_size: number of token ids, padding and special ids included.
        max_len: padded sequence length L of ``input_ids`` (per document for pair tasks).
        num_classes: number of target classes.
        pair: True when an example holds two sequences (``input_ids_2``/``mask_2``).
        pad_id: id used for padding positions (``mask`` is False there).

    How the encoder pools is part of the task's recipe (``backbone.pooling`` in
    ``conf/task/<task>.yaml``), not of the data contract.
    """

    name: str
    vocab_size: int
    max_len: int
    num_classes: int
    pair: bool = False
    pad_id: int = 0
