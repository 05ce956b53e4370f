"""Image (CIFAR-10) task: TF's grayscale rounding, pixel tokens, seeded splits, a tiny run.

The fixture is a tiny ``uoft-cs/cifar10`` in the hub's file layout
(``plain_text/{train,test}-00000-of-00001.parquet``; features ``img`` Image (PNG bytes) and
``label`` ClassLabel of the ten CIFAR names), loaded by ``datasets.load_dataset``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lra.config import build_task, compose
from lra.run import train
from tasks import MissingDataError
from tasks.image import ImageTask, rgb_to_gray

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def png(array: np.ndarray, mode: str | None = None) -> dict:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def make_images(n: int, seed: int) -> list[np.ndarray]:
    """RGB [32, 32, 3] images; each has black pixels and a pure green one."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        rgb[0, :4] = 0
        rgb[1, 0] = (0, 255, 0)
        images.append(rgb)
    return images


def write_cifar(folder, n_train: int = 30, n_test: int = 10, bad_size: bool = False) -> dict:
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as HFImage

    features = Features({"img": HFImage(), "label": ClassLabel(names=NAMES)})
    out = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images = make_images(n, seed)
        cells = [png(a) for a in images]
        cells[-1] = png(images[-1][..., 0], "L")  # a grayscale PNG: gray c must stay c
        images[-1] = np.repeat(images[-1][..., :1], 3, axis=-1)
        if bad_size and split == "train":
            cells[2] = png(np.zeros((16, 16, 3), np.uint8))
        labels = [(3 * i + seed) % 10 for i in range(n)]
        path = folder / "plain_text" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict({"img": cells, "label": labels}, features=features).to_parquet(str(path))
        out[split] = (images, labels)
    return out


@pytest.fixture(scope="module", autouse=True)
def offline():
    """No test may reach the network: the hub answers 'offline' at once."""
    import datasets.config
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar10")
    return folder, write_cifar(folder)


def _task(data_dir, folder, **kw):
    task = build_task("image", data_dir=data_dir, hf_path=str(folder), **{"val_size": 6, **kw})
    task.progress = False
    task.prepare()
    return task


@pytest.fixture(scope="module")
def prepared(cifar, tmp_path_factory):
    folder, rows = cifar
    return _task(tmp_path_factory.mktemp("data"), folder), rows


def test_grayscale_is_tf_rgb_to_grayscale():
    pixels = np.array(
        [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 150, 200]],
        dtype=np.uint8,
    )
    # TF truncates x*255.5: pure green is 149 (PIL's rounding convert("L") gives 150)
    assert rgb_to_gray(pixels).tolist() == [0, 255, 76, 149, 29, 141]
    assert np.asarray(Image.fromarray(pixels[None, 3:4]).convert("L"))[0, 0] == 150
    gray = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    assert rgb_to_gray(gray).tolist() == list(range(256))
    rgb = np.random.default_rng(0).integers(0, 256, (4096, 3), dtype=np.uint8)
    exact = np.floor(rgb @ np.array([0.2989, 0.5870, 0.1140]) / 255 * 255.5)
    diff = rgb_to_gray(rgb).astype(int) - exact
    assert np.abs(diff).max() <= 1 and (diff == 0).mean() > 0.999  # float32 vs float64
    with pytest.raises(ValueError, match="uint8 RGB"):
        rgb_to_gray(pixels.astype(np.int32))


def test_spec(prepared):
    spec = prepared[0].spec
    assert (spec.name, spec.vocab_size, spec.max_len, spec.num_classes) == ("image", 256, 1024, 10)
    default = build_task("image")
    assert not spec.pair and default.cfg.backbone.pooling == "cls"
    assert default.cfg.val_size == 5000 and default.data_spec()["source"] == "hub:uoft-cs/cifar10"


def test_pixels_row_major_and_pixel_zero_is_real(prepared):
    task, rows = prepared
    images, labels = rows["test"]
    data = task.split("test")
    batch = data.get_batch(np.arange(len(data)), trim=True)
    assert batch["label"].tolist() == labels
    assert batch["input_ids"].shape == (10, 1024) and bool(batch["mask"].all())
    for row, rgb in zip(batch["input_ids"], images, strict=True):
        assert row.tolist() == rgb_to_gray(rgb).reshape(-1).tolist()
        assert row[:4].tolist() == [0, 0, 0, 0]  # black pixels: real tokens, mask True
    assert batch["input_ids"][0, 32] == 149  # row 1, column 0: pure green
    assert np.array_equal(images[-1][..., 0].reshape(-1), data.input_ids[-1])  # the gray PNG
    assert task.summary()["splits"]["test"]["black_pixels"] >= 40


def test_split_sizes_and_seeds(prepared, cifar, tmp_path):
    task, rows = prepared
    folder, _ = cifar
    assert task.summary()["sizes"] == {"train": 24, "val": 6, "test": 10}

    def keys(t, split):
        return [r.tobytes() for r in t.split(split).input_ids]

    every = [rgb_to_gray(a).tobytes() for a in rows["train"][0]]
    train_rows, val_rows = keys(task, "train"), keys(task, "val")
    assert not set(train_rows) & set(val_rows) and sorted(train_rows + val_rows) == sorted(every)
    assert train_rows == [k for k in every if k not in set(val_rows)]  # stored order kept
    same = _task(tmp_path / "again", folder)
    other = _task(tmp_path, folder, split_seed=1)
    assert keys(same, "val") == val_rows and keys(other, "val") != val_rows
    sliced = _task(tmp_path, folder, split_seed=None)
    assert keys(sliced, "val") == every[-6:]
    assert len({task.cache_dir, other.cache_dir, sliced.cache_dir}) == 3


def test_prepare_is_idempotent(prepared, monkeypatch):
    task, _ = prepared
    monkeypatch.setattr(ImageTask, "build_splits", lambda self: pytest.fail("re-decoded"))
    again = build_task("image", data_dir=task.data_dir, hf_path=str(task.cfg.hf_path), val_size=6)
    assert again.prepare() == task.cache_dir


def test_bad_inputs_are_named(cifar, tmp_path):
    write_cifar(tmp_path / "bad", n_train=4, n_test=2, bad_size=True)
    with pytest.raises(ValueError, match=r"bad:train row 2: expected a 32x32 image, got 16x16"):
        _task(tmp_path, tmp_path / "bad", val_size=1)
    with pytest.raises(ValueError, match="val_size must be a positive int, got 0"):
        build_task("image", val_size=0)
    with pytest.raises(ValueError, match="val_size 30 leaves no training data"):
        _task(tmp_path, cifar[0], val_size=30)
    with pytest.raises(MissingDataError, match="hf download uoft-cs/cifar10"):
        build_task("image", data_dir=tmp_path, hf_path=str(tmp_path / "none")).prepare()


def test_tiny_training_run(cifar, tmp_path):
    folder, _ = cifar
    overrides = [
        "task=image",
        f"data_dir={tmp_path / 'data'}",
        f"results_dir={tmp_path / 'results'}",
        f"task.hf_path={folder}",
        "task.val_size=6",
        "task.backbone.dim=16",
        "task.backbone.qkv_dim=8",
        "task.backbone.heads=2",
        "task.backbone.mlp_dim=16",
        "task.optim.batch_size=4",
        "task.optim.steps=2",
        "task.optim.eval_every=2",
        "task.optim.warmup=1",
        "trainer.device=cpu",
        "trainer.progress=false",
    ]
    record = train.run(compose("train", overrides), tmp_path / "run")
    assert record["status"] == "ok" and record["task"] == "image" and record["steps"] == 2
    assert record["config"]["task"]["backbone"]["pos"] == "learned"
