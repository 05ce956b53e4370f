"""``quirks=lra``: each of the original pipeline's behaviours, per task, in a real run and in
the report (its own protocol, never pooled with ``quirks=none`` runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lra import identity
from lra.config import compose
from lra.quirks import Quirks
from lra.report.configs import annotate
from lra.run import train
from lra.run.batches import BatchOrder, EpochOrder, eval_batches
from lra.run.checks import ConfigError, validate_run_config
from models.backbone import Classifier, pool
from tasks.spec import TaskSpec


@pytest.mark.parametrize(
    ("task", "pixels", "drop_last", "batch_shuffle"),
    [
        ("listops", False, False, False),
        ("text", False, False, False),
        ("retrieval", False, True, False),
        ("image", True, True, True),
        ("pathfinder", True, True, True),
        ("pathx", True, True, True),
    ],
)
def test_which_behaviours_apply_to_which_task(task, pixels, drop_last, batch_shuffle):
    q = Quirks.of("lra", task)
    assert (q.pixel_zero_is_padding, q.drop_last_eval_batch, q.batch_shuffle) == (
        pixels,
        drop_last,
        batch_shuffle,
    )
    assert q.mean_over_padding and q.last_checkpoint and not q.projection_bias
    assert Quirks.of("none", task) == Quirks() == Quirks.of(None, task)


def test_bad_switch_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"quirks='LRA'.*\['none', 'lra'\]"):
        Quirks.of("LRA", "listops")
    with pytest.raises(ConfigError, match="quirks"):
        validate_run_config(compose("train", ["experiment=smoke", "quirks=yes"]))


def test_switch_off_keeps_every_earlier_run_id():
    """``quirks: none`` is left out of the hash; ``quirks=lra`` is another configuration."""
    base = compose("train", ["experiment=smoke"])
    container = identity.semantic_config(base)
    assert "quirks" not in container
    lra = compose("train", ["experiment=smoke", "quirks=lra"])
    assert identity.make_run_id(lra) != identity.make_run_id(base)
    assert identity.config_fingerprint(lra) != identity.config_fingerprint(base)


def test_batch_order_keeps_batches_and_shuffles_their_order():
    order = BatchOrder(103, 10, seed=4)
    epochs = [[tuple(order.indices(e * 10 + i)) for i in range(10)] for e in range(2)]
    assert (
        sorted(epochs[0])
        == sorted(epochs[1])
        == [tuple(range(s, s + 10)) for s in range(0, 100, 10)]
    )
    assert epochs[0] != epochs[1]  # the order changes per epoch
    plain = EpochOrder(103, 10, seed=4)  # examples, not batches, are shuffled there
    assert sorted(tuple(plain.indices(i)) for i in range(10)) != sorted(epochs[0])


def test_black_pixels_become_padding_only_under_the_switch():
    ids = torch.tensor([[0, 5, 0, 7]])
    batch = {"input_ids": ids, "mask": torch.ones(1, 4, dtype=torch.bool)}
    assert Quirks.of("lra", "image").batch(batch)["mask"].tolist() == [[False, True, False, True]]
    assert Quirks.of("lra", "listops").batch(batch)["mask"].all()
    assert Quirks.of("none", "image").batch(batch)["mask"].all()


def test_eval_drops_the_last_partial_batch():
    class Split:
        def __len__(self):
            return 10

        def get_batch(self, idx, trim):
            return {"label": torch.as_tensor(idx)}

    kept = [b["label"].tolist() for b in eval_batches(Split(), 4, False, drop_last=True)]
    assert kept == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert sum(len(b["label"]) for b in eval_batches(Split(), 4, False)) == 10


TINY = {"layers": 1, "heads": 2, "dim": 16, "mlp_dim": 32, "pooling": "mean", "dropout": 0.0}


def test_mean_over_padding_and_projections_without_bias():
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    torch.testing.assert_close(pool(x, mask, "mean", over_padding=True), x.mean(dim=1))
    assert not torch.allclose(pool(x, mask, "mean"), x.mean(dim=1))
    spec = TaskSpec(name="toy", vocab_size=20, max_len=16, num_classes=3)
    torch.manual_seed(0)
    ours = Classifier(spec, TINY, "transformer")
    torch.manual_seed(0)
    theirs = Classifier(spec, {**TINY, **Quirks.of("lra", "listops").backbone({})}, "transformer")
    attn = theirs.encoder.blocks[0].attn
    assert attn.to_qkv.bias is None and attn.to_out.bias is None
    assert ours.num_params() - theirs.num_params() == 3 * 16 + 16  # q, k, v and out biases
    ids = torch.randint(1, 20, (2, 16))
    padded = torch.ones(2, 16, dtype=torch.bool)
    padded[0, 9:] = False
    assert theirs.eval()({"input_ids": ids, "mask": padded}).isfinite().all()


@pytest.fixture
def pathfinder_overrides(data_dir, tmp_path) -> list[str]:
    """A seconds-long generated Pathfinder run: 50 images (40/5/5), batches of 4."""
    return [
        "experiment=smoke",
        "task=pathfinder",
        f"data_dir={data_dir}",
        f"results_dir={tmp_path / 'results'}",
        "task.num_images=50",
        "task.backbone.layers=1",
        "task.optim.batch_size=4",
        "task.optim.steps=4",
        "task.optim.warmup=1",
        "task.optim.eval_every=2",
        "trainer.progress=false",
    ]


def test_a_quirks_run_reproduces_the_original_evaluation(pathfinder_overrides, tmp_path):
    """Pathfinder under quirks=lra: val/test scored in training-sized batches without the
    partial one (4 of 5 images), the last step's test accuracy reported; quirks=none scores
    all 5."""
    lra = train.run(compose("train", [*pathfinder_overrides, "quirks=lra"]), tmp_path / "a")
    assert lra["status"] == "ok" and lra["config"]["quirks"] == "lra"
    assert (lra["n_val"], lra["n_test"]) == (4, 4)
    assert lra["test_acc"] == lra["test_acc_last"]
    ours = train.run(compose("train", pathfinder_overrides), tmp_path / "b")
    assert (ours["n_val"], ours["n_test"]) == (5, 5) and ours["run_id"] != lra["run_id"]
    frame = annotate(pd.DataFrame([lra, ours]))
    # shrunk data: smoke-custom either way, the switch keeps them apart
    assert list(frame["protocol"]) == ["smoke-custom+quirks", "smoke-custom"]
    assert frame["row"].iloc[0] == frame["row"].iloc[1]  # quirks is no recipe difference
    assert "quirks" not in frame["row"].iloc[0]
    assert frame["fingerprint"].nunique() == 2


def test_batch_shuffle_trains_on_fixed_batches(pathfinder_overrides, tmp_path, monkeypatch):
    seen = []
    real = BatchOrder.indices

    def spy(self, step):
        out = real(self, step)
        seen.append(tuple(out))
        return out

    monkeypatch.setattr(BatchOrder, "indices", spy)
    train.run(compose("train", [*pathfinder_overrides, "quirks=lra"]), tmp_path / "a")
    assert seen and all(np.array_equal(s, np.arange(s[0], s[0] + 4)) for s in map(np.array, seen))
