"""DDP with torchrun: data shards, global batch, reduced metrics, one record equal to 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lra.run import distributed
from lra.run.batches import EpochOrder


def test_shards_partition_the_global_batch():
    order = EpochOrder(num_examples=100, batch_size=12, seed=3)
    for step in (0, 5, 8, 9):  # 8 batches per epoch: step 8 starts a new permutation
        shards = [distributed.ShardedOrder(order, r, 4).indices(step) for r in range(4)]
        assert [len(s) for s in shards] == [3, 3, 3, 3]
        np.testing.assert_array_equal(np.concatenate(shards), order.indices(step))


def test_global_batch_must_split_evenly():
    distributed.check_batch(32, world_size=4, grad_accum=2)
    with pytest.raises(ValueError, match=r"batch_size=30.*world_size \(4\)"):
        distributed.check_batch(30, world_size=4, grad_accum=1)


def test_single_process_is_a_no_op(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    info = distributed.from_env()
    assert not info.enabled and info.is_main and info.world_size == 1
    assert distributed.all_reduce_sum([2.0, 3.0], None) == [2.0, 3.0]
    assert distributed.gather_objects("x") == ["x"]


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_equal_single_process(tiny_overrides, tmp_path):
    """gloo, 2 ranks x 16 examples = the single-process batch of 32 (dropout 0)."""
    overrides = tiny_overrides + [
        "task.backbone.dropout=0.0",
        "task.backbone.attn_dropout=0.0",
        "trainer.eval_batch_size=16",  # 4 eval batches: each rank evaluates two
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, "-m", "lra.run.train", *overrides, f"hydra.run.dir={single}",
         f"results_dir={tmp_path / 'r1'}"],
        env=env, check=True, timeout=300,
    )  # fmt: skip
    ddp = tmp_path / "ddp"
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "lra.run.train", *overrides, f"hydra.run.dir={ddp}", f"results_dir={tmp_path / 'r2'}"],
        env=env, check=True, timeout=300,
    )  # fmt: skip
    assert len(list((tmp_path / "r2" / "runs").glob("*.json"))) == 1  # rank 0 alone writes
    a, b = (json.loads((d / "record.json").read_text()) for d in (single, ddp))
    assert a["run_id"] == b["run_id"] and b["status"] == "ok" and b["steps"] == a["steps"]
    for key in ("val_acc", "test_acc", "test_acc_last"):
        assert b[key] == pytest.approx(a[key], abs=1.5 / 64), key  # at most one example apart
    np.testing.assert_allclose(
        [h["train_loss"] for h in b["history"]], [h["train_loss"] for h in a["history"]], rtol=1e-3
    )
    np.testing.assert_allclose([h["lr"] for h in b["history"]], [h["lr"] for h in a["history"]])
