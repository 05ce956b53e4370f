"""LRA Text (Tay et al. 2021, §3.2): byte-level IMDb sentiment (Maas et al. 2011), 2 classes.

Source: the HF dataset ``stanfordnlp/imdb`` (25,000 train / 25,000 test; columns ``text``,
``label`` with 0 = neg, 1 = pos), read through ``tasks.hf`` (``hf_path``: hub id or a local
copy). LRA read the same reviews from TFDS ``imdb_reviews`` (in another order).

Tokens (``tasks.bytes_tokens``): UTF-8 bytes, id = byte + 1, pad 0, vocab 257, truncated to
``seq_len`` bytes (default 4096, the paper's 4K; LRA's released config used 1000, so
``seq_len=1000`` reproduces it) and padded with 0. The number of truncated reviews is recorded
in the cache's summary.

Validation (``val_policy``):

* ``test`` (default, what LRA and every port did): val is the test split. Then the best-val
  checkpoint is chosen on test; ``test_acc_last`` in the record is the number free of that.
* ``holdout``: val is ``val_size`` reviews drawn from train by ``split_seed`` (the rest stays
  train, in stored order); test is untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from tasks import bytes_tokens as bt
from tasks import hf
from tasks.base import Task
from tasks.spec import TaskSpec
from tasks.splits import check_labels, check_split_keys, holdout_split, split_summary

HUB_ID = "stanfordnlp/imdb"
NUM_CLASSES = 2
FORMAT = "text-bytes-v1"  # tokeniser version: part of every data spec
VAL_POLICIES = ("test", "holdout")
COLUMNS = ("text", "label")
CHUNK = 2048  # reviews tokenised per vectorised call


class Text(Task):
    """IMDb reviews as byte sequences; ``progress`` shows tokenisation bars."""

    name: ClassVar[str] = "text"
    progress: bool = True

    def __init__(self, cfg: DictConfig | dict[str, Any], data_dir: str | Path = "data"):
        super().__init__(cfg, data_dir)
        if self.val_policy == "holdout":  # bad keys fail at construction, not mid-way
            check_split_keys(self.cfg.val_size, self.cfg.split_seed)

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            vocab_size=bt.VOCAB_SIZE,
            max_len=int(self.cfg.seq_len),
            num_classes=NUM_CLASSES,
            pair=False,
            pad_id=bt.PAD_ID,
        )

    def source_of(self, split: str) -> str:
        held_out = self.val_policy == "holdout"
        hf_split = {"val": "train (hold-out)" if held_out else "test"}.get(split, split)
        return f"{self.cfg.hf_path}:{hf_split}"

    @property
    def val_policy(self) -> str:
        policy = self.cfg.val_policy
        if policy not in VAL_POLICIES:
            raise ValueError(f"text val_policy must be one of {list(VAL_POLICIES)}, got {policy!r}")
        return policy

    def data_spec(self) -> dict[str, Any]:
        spec = {
            "name": self.name,
            "format": FORMAT,
            "source": hf.task_source(self),
            "seq_len": int(self.cfg.seq_len),
            "val_policy": self.val_policy,
        }
        if self.val_policy == "holdout":  # the hold-out keys only matter then
            seed = self.cfg.split_seed
            spec |= {"val_size": self.cfg.val_size, "split_seed": seed}
        return spec

    def _load(self, split: str):
        return hf.load_task_split(self, split, COLUMNS, HUB_ID)

    def _tokenise(self, ds, split: str) -> dict[str, np.ndarray]:
        """``input_ids`` [N, L], ``lengths`` [N], ``labels`` [N] and ``truncated`` [N] bool."""
        seq_len = int(self.cfg.seq_len)
        ids = np.zeros((len(ds), seq_len), dtype=bt.DTYPE)
        lengths = np.zeros(len(ds), dtype=np.int32)
        labels = check_labels(np.asarray(ds["label"]), NUM_CLASSES, f"{self.cfg.hf_path}:{split}")
        truncated = np.zeros(len(ds), dtype=bool)
        bar = tqdm(total=len(ds), desc=f"text {split}", unit="doc", disable=not self.progress)
        start = 0
        for batch in ds.select_columns(["text"]).iter(batch_size=CHUNK):
            stop = start + len(batch["text"])
            full = bt.encode_into(batch["text"], ids[start:stop], lengths[start:stop])
            truncated[start:stop] = full > seq_len
            bar.update(stop - start)
            start = stop
        bar.close()
        return {"input_ids": ids, "lengths": lengths, "labels": labels, "truncated": truncated}

    def build_splits(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        policy = self.val_policy
        test = self._tokenise(self._load("test"), "test")
        train = self._tokenise(self._load("train"), "train")
        if policy == "test":
            splits = {"train": train, "val": test, "test": test}
        else:
            n = len(train["labels"])
            tr, va = holdout_split(n, self.cfg.val_size, self.cfg.split_seed)
            splits = {
                "train": {k: v[tr] for k, v in train.items()},
                "val": {k: v[va] for k, v in train.items()},
                "test": test,
            }
        summary: dict[str, Any] = {
            "hf_path": str(self.cfg.hf_path),
            "val_policy": policy,
            "hf_revision": self.cfg.get("hf_revision") or "unpinned",
        }
        summary["splits"] = {
            name: split_summary(
                a["lengths"], a["labels"], NUM_CLASSES, truncated=int(a["truncated"].sum())
            )
            for name, a in splits.items()
        }
        keep = ("input_ids", "lengths", "labels")
        return {name: {k: a[k] for k in keep} for name, a in splits.items()}, summary
