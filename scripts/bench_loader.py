"""Throughput of the data loader alone (sequences/s) on a prepared byte-level Text split.

    python scripts/bench_loader.py [--rows 25000] [--seq-len 4096] [--batches 400] [--model]
        [--out results/measured/loader_throughput.csv]

Writes a synthetic prepared Text cache (``tasks.cache.write_cache``; ``rows`` reviews with
IMDb-like byte lengths: log-normal, median ~980, cut at ``seq_len``) into a temp folder, then
times, with batches of 32 drawn at random:

* ``ArraySplit.get_batch`` (memory-mapped read + mask), without and with ``trim``;
* ``lra.run.batches.train_loader`` (what ``lra-train`` iterates) with ``num_workers`` 0 and 2,
  worker start-up included.

The file is read once first (warm page cache, as in training after the first epoch); each
number is the median of 3 runs.

``--model`` adds one forward+backward of the Text recipe (4 layers, emb 256, SDPA) at batch
1 x ``seq_len`` on this machine, for comparison. Rows are appended to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from lra.provenance import git_sha
from lra.run.batches import EpochOrder, train_loader
from tasks import bytes_tokens as bt
from tasks import cache
from tasks.spec import TaskSpec

BATCH = 32
FIELDS = ["task", "what", "command", "seqs_per_s", "ms_per_batch", "machine", "git_sha", "date"]


def synthetic_split(folder: Path, rows: int, seq_len: int) -> cache.ArraySplit:
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(np.log(980), 0.75, rows).astype(np.int64), 10, seq_len)
    ids = np.zeros((rows, seq_len), dtype=bt.DTYPE)
    ids[np.arange(seq_len)[None, :] < lengths[:, None]] = rng.integers(
        33, 128, int(lengths.sum()), dtype=bt.DTYPE
    )
    labels = rng.integers(0, 2, rows)
    spec = TaskSpec(name="text", vocab_size=bt.VOCAB_SIZE, max_len=seq_len, num_classes=2)
    arrays = {"input_ids": ids, "lengths": lengths, "labels": labels}
    small = {k: v[:BATCH] for k, v in arrays.items()}
    splits = {"train": arrays, "val": small, "test": small}
    cache.write_cache(folder, splits, spec, {"synthetic": True, "rows": rows})
    return cache.ArraySplit(folder / "train")


def time_get_batch(split: cache.ArraySplit, batches: int, trim: bool, seed: int) -> float:
    rng = np.random.default_rng(seed)
    index = [rng.choice(len(split), BATCH, replace=False) for _ in range(batches)]
    start = time.perf_counter()
    for idx in index:
        split.get_batch(idx, trim=trim)
    return time.perf_counter() - start


def time_loader(split: cache.ArraySplit, batches: int, workers: int, seed: int) -> float:
    order = EpochOrder(len(split), BATCH, seed=seed)
    start = time.perf_counter()
    for _ in train_loader(split, order, 0, batches, trim=True, num_workers=workers):
        pass
    return time.perf_counter() - start


def median_of(runs: int, measure, *args) -> float:
    """Median seconds of ``runs`` calls ``measure(*args, seed=i)`` (the machine is shared)."""
    return float(np.median([measure(*args, seed=i) for i in range(runs)]))


def time_model(seq_len: int) -> float:
    """Seconds of one forward+backward of the Text recipe at batch 1 x seq_len (2nd step)."""
    import models
    from lra.config import compose

    cfg = compose("train", ["task=text", "model=transformer"])
    spec = TaskSpec(name="text", vocab_size=bt.VOCAB_SIZE, max_len=seq_len, num_classes=2)
    model = models.build(spec, cfg.task.backbone, cfg.model)
    batch = {
        "input_ids": torch.randint(1, 257, (1, seq_len)),
        "mask": torch.ones(1, seq_len, dtype=torch.bool),
        "label": torch.zeros(1, dtype=torch.long),
    }
    took = 0.0
    for _ in range(2):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(batch), batch["label"])
        loss.backward()
        took = time.perf_counter() - start
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=25000)
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--model", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("results/measured/loader_throughput.csv"))
    args = parser.parse_args()
    command = "python scripts/bench_loader.py" + (" --model" if args.model else "")
    machine = f"{torch.get_num_threads()}-thread {platform.machine()} CPU"
    common = {"task": "text", "command": command, "machine": machine}
    common |= {"git_sha": git_sha(), "date": date.today().isoformat()}
    rows = []

    def add(what: str, seconds: float, batches: int, batch: int = BATCH) -> None:
        rate = batches * batch / seconds
        row = {"what": what, "seqs_per_s": round(rate) if rate >= 10 else round(rate, 4)}
        row["ms_per_batch"] = round(1000 * seconds / batches, 2)
        rows.append(common | row)
        print(f"{what}: {row['seqs_per_s']} seq/s, {row['ms_per_batch']} ms/batch")

    with tempfile.TemporaryDirectory() as tmp:
        split = synthetic_split(Path(tmp) / "text", args.rows, args.seq_len)
        size = f"{args.rows} rows x {args.seq_len} uint16, batch {BATCH}"
        n = args.batches
        int(np.asarray(split.input_ids).sum())  # warm: the whole file in the page cache
        add(f"ArraySplit.get_batch, {size}", median_of(3, time_get_batch, split, n, False), n)
        add(
            f"ArraySplit.get_batch trim=True, {size}",
            median_of(3, time_get_batch, split, n, True),
            n,
        )
        for workers in (0, 2):
            label = (
                f"lra.run.batches.train_loader num_workers={workers} (start-up included), {size}"
            )
            add(label, median_of(3, time_loader, split, n, workers), n)
    if args.model:
        seconds = time_model(args.seq_len)
        add(f"Text recipe forward+backward, batch 1 x {args.seq_len} (SDPA)", seconds, 1, 1)
    new = not args.out.exists()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
