"""LRA Image (Tay et al. 2021, §3.4): CIFAR-10 (Krizhevsky 2009) as a sequence of 1,024
grayscale pixel intensities, 10 classes.

Source: the HF dataset ``uoft-cs/cifar10`` (50,000 train / 10,000 test; columns ``img``
(PNG; ``{"bytes", "path"}`` undecoded) and ``label``), read through ``tasks.hf``
(``hf_path``: hub id or a local copy). LRA read TFDS ``cifar10``.

Splits: val is ``val_size`` (5,000) train images picked by ``split_seed``, the other 45,000
are train (each in stored order); test is the 10,000 test images. LRA sliced TFDS's
``train[:90%]`` / ``train[90%:]`` instead; ``split_seed: null`` slices the same way (last
``val_size`` images), but HF's order is not TFDS's, so neither gives LRA's exact images.

Pixels: ``tf.image.rgb_to_grayscale`` as LRA applied it to uint8 images, in float32:
``gray = trunc(((r, g, b) * (1/255)) . (0.2989, 0.5870, 0.1140) * 255.5)`` -- ITU-R 601 luma
weights (summing to 0.9999) and TF's float-to-uint8 cast, which scales by 255.5 and
truncates (it does *not* round: pure green (0, 255, 0) gives 149 where PIL's ``convert("L")``
gives 150; a gray pixel (c, c, c) gives c). Tokens are the intensities 0..255 (vocab 256),
flattened row-major to 1,024 ids.

Padding: there is none; every position is real (``mask`` all True) and pixel 0 is an ordinary
token. The LRA encoders built their mask as ``inputs > 0``, so black pixels were masked out by
accident; we depart from that (``TaskSpec.pad_id`` is 0 only because the field is required).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from omegaconf import DictConfig
from PIL import Image
from tqdm.auto import tqdm

from tasks import hf
from tasks.base import Task
from tasks.spec import TaskSpec
from tasks.splits import check_labels, check_split_keys, holdout_split, split_summary

HUB_ID = "uoft-cs/cifar10"
NUM_CLASSES = 10
SIDE = 32
SEQ_LEN = SIDE * SIDE
VOCAB_SIZE = 256
FORMAT = "image-gray-tf601-v1"  # grayscale conversion version: part of every data spec
COLUMNS = ("img", "label")
LUMA = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)  # tf.image.rgb_to_grayscale
CHUNK = 1000  # images decoded per batch


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """``tf.image.rgb_to_grayscale`` for uint8 input: [..., 3] uint8 -> [...] uint8.

    float32 throughout, as TF: ``x * float32(1/255)``, dot with ``LUMA``, ``* 255.5``,
    truncation to uint8. Matches TF up to float32 summation order.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1:] != (3,):
        raise ValueError(f"expected [..., 3] uint8 RGB, got {rgb.shape} {rgb.dtype}")
    flt = rgb.astype(np.float32) * np.float32(1.0 / 255)
    gray = (flt[..., 0] * LUMA[0] + flt[..., 1] * LUMA[1]) + flt[..., 2] * LUMA[2]
    return np.clip(gray * np.float32(255.5), 0, 255).astype(np.uint8)


def decode_image(value: Any, where: str) -> np.ndarray:
    """An ``img`` cell (``{"bytes", "path"}`` or a PIL image) as [32, 32, 3] uint8 RGB."""
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        data = value.get("bytes")
        image = Image.open(io.BytesIO(data) if data else value["path"])
    else:
        raise ValueError(f"{where}: img must be an image ({{'bytes', 'path'}}), got {value!r:.80}")
    rgb = np.asarray(image.convert("RGB"))
    if rgb.shape != (SIDE, SIDE, 3):
        raise ValueError(
            f"{where}: expected a {SIDE}x{SIDE} image, got {image.size[0]}x{image.size[1]}"
        )
    return rgb


class ImageTask(Task):
    """Grayscale CIFAR-10 pixel sequences; ``progress`` shows decoding bars."""

    name: ClassVar[str] = "image"
    progress: bool = True

    def __init__(self, cfg: DictConfig | dict[str, Any], data_dir: str | Path = "data"):
        super().__init__(cfg, data_dir)
        check_split_keys(self.cfg.val_size, self.cfg.split_seed)  # fail before any work

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            vocab_size=VOCAB_SIZE,
            max_len=SEQ_LEN,
            num_classes=NUM_CLASSES,
            pair=False,
            pad_id=0,  # unused: no position is padding
        )

    def data_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": FORMAT,
            "source": hf.task_source(self),
            "val_size": self.cfg.val_size,
            "split_seed": self.cfg.split_seed,
        }

    def _read(self, split: str) -> dict[str, np.ndarray]:
        import datasets

        ds = hf.load_task_split(self, split, COLUMNS, HUB_ID)
        where = f"{self.cfg.hf_path}:{split}"
        if isinstance(ds.features["img"], datasets.Image):
            ds = ds.cast_column("img", datasets.Image(decode=False))
        labels = check_labels(np.asarray(ds["label"]), NUM_CLASSES, where)
        ids = np.zeros((len(ds), SEQ_LEN), dtype=np.uint8)
        bar = tqdm(total=len(ds), desc=f"image {split}", unit="img", disable=not self.progress)
        start = 0
        for batch in ds.select_columns(["img"]).iter(batch_size=CHUNK):
            rgb = np.stack(
                [decode_image(v, f"{where} row {start + i}") for i, v in enumerate(batch["img"])]
            )
            ids[start : start + len(rgb)] = rgb_to_gray(rgb).reshape(len(rgb), SEQ_LEN)
            start += len(rgb)
            bar.update(len(rgb))
        bar.close()
        lengths = np.full(len(ds), SEQ_LEN, dtype=np.int32)
        return {"input_ids": ids, "lengths": lengths, "labels": labels}

    def source_of(self, split: str) -> str:
        hf_split = {"val": "train (hold-out)"}.get(split, split)
        return f"{self.cfg.hf_path}:{hf_split}"

    def build_splits(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        seed = self.cfg.split_seed
        test = self._read("test")
        full = self._read("train")
        tr, va = holdout_split(len(full["labels"]), self.cfg.val_size, seed)
        splits = {
            "train": {k: v[tr] for k, v in full.items()},
            "val": {k: v[va] for k, v in full.items()},
            "test": test,
        }
        summary: dict[str, Any] = {
            "hf_path": str(self.cfg.hf_path),
            "splits": {},
            "hf_revision": self.cfg.get("hf_revision") or "unpinned",
        }
        for name, arrays in splits.items():
            summary["splits"][name] = split_summary(
                arrays["lengths"],
                arrays["labels"],
                NUM_CLASSES,
                black_pixels=int((arrays["input_ids"] == 0).sum()),
            )
        return splits, summary
