"""LRA Pathfinder and Path-X (Tay et al. 2021): is there a path between the two markers?

Images of ``pathfinder<resolution>/<difficulty>`` (Linsley et al. 2018; Kim*, Linsley* et al.
2020); LRA's "Pathfinder" is 32x32 ``curv_contour_length_14`` (hard) and "Path-X" 128x128 hard
(the ``pathx`` task: the same class with those defaults in ``conf/task/pathx.yaml``).

Sources (``cfg.source``):

* ``release`` (default): ``<release_dir>/pathfinder<res>/<folder>/`` of the LRA release
  (``release_dir`` defaults to ``<data_dir>/lra_release``; the archive's nested
  ``<release_dir>/lra_release/pathfinder<res>`` is accepted too).
* ``generate``: our seeded generator (``tasks.pathfinder_gen``, docs/GENERATORS.md §2)
  writes the same layout under ``<data_dir>/generated/pathfinder<res>-<hash>/<folder>/``.

Either way the reader (§2.11) enumerates every line of ``metadata/*.npy`` (text, 11 fields:
dir, file, index, label, ...; NumPy-saved string arrays are accepted too), skips empty,
missing or undecodable PNGs (counted in the summary), splits with a seeded permutation
80/10/10 and keeps the raw pixel values 0..255 flattened row-major as tokens (vocab 256, no
padding: every sequence is full length and pixel 0 is a real token, unlike LRA, whose
``inputs > 0`` mask dropped black pixels by accident). PNGs are decoded once, straight into
the split arrays (memory-mapped temporary files for large sets).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from tasks import cache, files
from tasks import pathfinder_draw as draw
from tasks import pathfinder_gen as gen
from tasks.base import MissingDataError, Task
from tasks.errors import DataError
from tasks.spec import TaskSpec

VOCAB_SIZE = 256
NUM_CLASSES = 2
FORMAT = "pathfinder-v1"  # reader/tokeniser version: part of every data spec
METADATA_FIELDS = 11
SOURCES = ("release", "generate")
NPY_MAGIC = b"\x93NUMPY"
IN_MEMORY_LIMIT = 1 << 30  # decode into RAM below 1 GiB of pixels, into memmaps above


def _batch_key(path: Path) -> tuple[int, int | str]:
    stem = path.stem
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def read_metadata_file(path: str | Path) -> list[tuple[str, str, int]]:
    """Rows ``(image dir, file name, label)`` of one ``metadata/<k>.npy`` (§2.10).

    Text (what the release holds) or a NumPy-saved string array [N, 11]. Raises
    :class:`~tasks.errors.DataError` naming the file and 1-based line on text that is not
    UTF-8, a wrong field count, a label that is not 0 or 1, or an image path that is absolute
    or climbs out of the dataset folder (``..``).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(NPY_MAGIC):
        with open(path, "rb") as f:
            try:
                array = np.load(f, allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                raise DataError(f"{path}: unreadable NumPy metadata ({err})") from None
        if array.ndim != 2:
            raise DataError(f"{path}: expected a [N, {METADATA_FIELDS}] array, got {array.shape}")
        rows = [[x.decode() if isinstance(x, bytes) else str(x) for x in row] for row in array]
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise DataError(
                f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x}); metadata is text"
            ) from None
        rows = [line.split() for line in text.split("\n")]
        if rows and not rows[-1]:
            rows.pop()  # the final newline
    out = []
    for lineno, fields in enumerate(rows, start=1):
        if len(fields) != METADATA_FIELDS:
            raise DataError(
                f"{path}:{lineno}: expected {METADATA_FIELDS} space-separated fields "
                f"(dir file index label ...), got {len(fields)}"
            )
        if fields[3] not in ("0", "1"):
            raise DataError(f"{path}:{lineno}: label (field 4) must be 0 or 1, got {fields[3]!r}")
        for name in fields[:2]:
            if Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
                raise DataError(
                    f"{path}:{lineno}: image path {fields[0]}/{fields[1]} leaves the dataset "
                    "folder (absolute or '..'); refused"
                )
        out.append((fields[0], fields[1], int(fields[3])))
    return out


def read_metadata(folder: str | Path) -> list[tuple[Path, int]]:
    """``(png path, label)`` of every line of every ``<folder>/metadata/*.npy`` in batch order."""
    folder = Path(folder)
    metas = sorted((folder / "metadata").glob("*.npy"), key=_batch_key)
    out, empty = [], []
    for path in metas:
        rows = read_metadata_file(path)
        if not rows:
            empty.append(path.name)
        out.extend((folder / d / f, y) for d, f, y in rows)
    if empty:
        warnings.warn(
            f"{folder / 'metadata'}: {len(empty)} empty metadata file(s) list no image "
            f"({', '.join(empty[:5])}); their images are not used",
            stacklevel=2,
        )
    return out


def _load_png(path: Path, size: int) -> np.ndarray | str:
    """[size, size] uint8 pixels, or the reason to skip: ``missing``, ``empty``, ``unreadable``."""
    try:
        if os.stat(path).st_size == 0:
            return "empty"
        with Image.open(path) as img:
            img.load()
            if img.mode != "L":
                img = img.convert("L")  # as LRA's decode_png(channels=1)
            pixels = np.asarray(img)
    except FileNotFoundError:
        return "missing"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "unreadable"
    if pixels.shape != (size, size):
        raise ValueError(f"{path}: expected a {size}x{size} image, got {pixels.shape[::-1]}")
    return pixels


class Pathfinder(Task):
    """Pathfinder task; ``workers`` and ``progress`` tune generation (no effect on the data)."""

    name: ClassVar[str] = "pathfinder"
    workers: int | None = None
    progress: bool = True

    # ------------------------------------------------------------------ config
    @property
    def resolution(self) -> int:
        return draw.check_resolution(int(self.cfg.resolution))

    @property
    def difficulty(self) -> str:
        return draw.difficulty_name(str(self.cfg.difficulty))

    @property
    def folder_name(self) -> str:
        return draw.DIFFICULTIES[self.difficulty][0]

    @property
    def source(self) -> str:
        if self.cfg.source not in SOURCES:
            raise ValueError(
                f"{self.name} source must be one of {SOURCES}, got {self.cfg.source!r}"
            )
        return self.cfg.source

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            vocab_size=VOCAB_SIZE,
            max_len=self.resolution**2,
            num_classes=NUM_CLASSES,
            pair=False,
            pad_id=0,  # never used: every sequence is full length
        )

    def generator_fields(self) -> dict[str, Any]:
        """What identifies a generated set (the difficulty is a folder inside it)."""
        rule = str(self.cfg.distractors)
        if rule not in draw.DISTRACTOR_RULES:
            raise ValueError(f"distractors must be one of {draw.DISTRACTOR_RULES}, got {rule!r}")
        num = int(self.cfg.num_images)
        if num < 3:
            raise ValueError(f"num_images must be >= 3 (one per split), got {num}")
        return {
            "generator": gen.GENERATOR,
            "resolution": self.resolution,
            "num_images": num,
            "gen_seed": int(self.cfg.gen_seed),
            "distractors": rule,
            "batch_size": gen.BATCH_SIZE,
        }

    def root_dir(self) -> Path:
        """``pathfinder<res>`` folder holding the difficulty folders."""
        if self.source == "generate":
            digest = cache.spec_hash(self.generator_fields())
            return self.data_dir / "generated" / f"pathfinder{self.resolution}-{digest}"
        return self.release_path(f"pathfinder{self.resolution}")

    def source_of(self, split: str) -> str:
        return f"images under {self.image_dir()}, split {split} of the seeded 80/10/10 split"

    def image_dir(self) -> Path:
        """The difficulty folder (``imgs/`` and ``metadata/`` inside)."""
        return self.root_dir() / self.folder_name

    def data_spec(self) -> dict[str, Any]:
        """Generate: the generator fields. Release: metadata count and bytes (a new copy re-prepares)."""
        base = {
            "name": self.name,
            "source": self.source,
            "format": FORMAT,
            "resolution": self.resolution,
            "difficulty": self.difficulty,
            "split_seed": int(self.cfg.split_seed),
        }
        if self.source == "generate":
            return {**base, **self.generator_fields()}
        files = sorted((self.image_dir() / "metadata").glob("*.npy"))
        return {
            **base,
            "metadata_files": len(files),
            "metadata_bytes": sum(f.stat().st_size for f in files),
        }

    # ------------------------------------------------------------------ raw data
    def generate(self, progress: bool = True, workers: int | None = None) -> Path:
        """Generate (or finish generating) the images; return the difficulty folder."""
        if self.source != "generate":
            raise ValueError("generate() needs source=generate")
        f = self.generator_fields()
        gen.generate(
            self.root_dir(), self.resolution, self.difficulty, f["num_images"], f["gen_seed"],
            f["distractors"], workers=workers, progress=progress,
        )  # fmt: skip
        return self.image_dir()

    def _missing(self, what: str) -> MissingDataError:
        res, task = self.resolution, self.name
        return MissingDataError(
            f"{what} (pathfinder{res}, difficulty {self.difficulty} = {self.folder_name}). "
            f"Generate the images with `lra-data task={task} task.source=generate "
            f"task.resolution={res} task.difficulty={self.difficulty} "
            "[task.num_images=N workers=N]`, or download the LRA release with "
            "scripts/fetch_lra_release.sh and pass "
            f"task.release_dir=<folder holding pathfinder{res}/> "
            f"(default {self.data_dir / 'lra_release'})."
        )

    def _check_release(self) -> None:
        folder = self.image_dir()
        if not folder.is_dir():
            raise self._missing(f"Pathfinder folder {folder} not found")
        if not any((folder / "metadata").glob("*.npy")):
            raise self._missing(f"no metadata files {folder / 'metadata' / '*.npy'}")

    # ------------------------------------------------------------------ tokenise
    def _build_dir(self) -> Path:
        return files.tmp_name(self.cache_dir.with_name(self.cache_dir.name + ".build"))

    def prepare(self, verify: str = "quick", rebuild: bool = False) -> Path:
        """As ``Task.prepare``; also removes the temporary memmaps of a large decode."""
        try:
            return super().prepare(verify, rebuild)
        finally:
            shutil.rmtree(self._build_dir(), ignore_errors=True)

    def build_splits(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        """Decode every listed PNG once into its split's [N, H*W] uint8 array (§2.11).

        Empty and missing files are dropped before the seeded 80/10/10 permutation (as LRA
        filtered empty files before slicing); a PNG that fails to decode is dropped after it.
        """
        if self.source == "generate":
            self.generate(progress=self.progress, workers=self.workers)
        self._check_release()
        folder, size = self.image_dir(), self.resolution
        skipped: dict[str, list[str]] = {"empty": [], "missing": [], "unreadable": []}
        entries = []
        for path, label in read_metadata(folder):
            try:
                empty = os.stat(path).st_size == 0
            except FileNotFoundError:
                skipped["missing"].append(str(path.relative_to(folder)))
                continue
            if empty:
                skipped["empty"].append(str(path.relative_to(folder)))
            else:
                entries.append((path, label))
        order = np.random.default_rng(int(self.cfg.split_seed)).permutation(len(entries))
        n_eval = len(entries) // 10
        cuts = {"train": len(entries) - 2 * n_eval, "val": len(entries) - n_eval}
        parts = {
            "train": order[: cuts["train"]],
            "val": order[cuts["train"] : cuts["val"]],
            "test": order[cuts["val"] :],
        }
        big = len(entries) * size * size > IN_MEMORY_LIMIT
        stats = np.zeros(3, dtype=np.int64)  # pixel sum, pixels > 0, pixels >= 128
        bar = tqdm(total=len(entries), unit="img", desc=f"decode {folder.name}",
                   disable=not self.progress)  # fmt: skip
        splits = {}
        for split, indices in parts.items():
            shape = (len(indices), size * size)
            if big:
                self._build_dir().mkdir(parents=True, exist_ok=True)
                path = self._build_dir() / f"{split}.npy"
                ids = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
            else:
                ids = np.zeros(shape, dtype=np.uint8)
            labels = np.zeros(len(indices), dtype=np.int64)
            kept = 0
            for index in indices.tolist():
                path, label = entries[index]
                pixels = _load_png(path, size)
                bar.update(1)
                if isinstance(pixels, str):
                    skipped[pixels].append(str(path.relative_to(folder)))
                    continue
                ids[kept], labels[kept] = pixels.reshape(-1), label
                kept += 1
                stats += (pixels.sum(dtype=np.int64), np.count_nonzero(pixels),
                          np.count_nonzero(pixels >= 128))  # fmt: skip
            lengths = np.full(kept, size * size, dtype=np.int32)
            splits[split] = {"input_ids": ids[:kept], "lengths": lengths, "labels": labels[:kept]}
        bar.close()
        if not any(len(s["labels"]) for s in splits.values()):
            raise ValueError(f"{folder}: no readable image among the listed PNGs")
        return splits, self._summary(folder, splits, skipped, stats)

    def _summary(self, folder, splits, skipped, stats) -> dict[str, Any]:
        if any(skipped.values()):
            counts = ", ".join(f"{len(v)} {k}" for k, v in skipped.items() if v)
            warnings.warn(f"{folder}: skipped {counts} PNG(s)", stacklevel=3)
        kept = sum(len(s["labels"]) for s in splits.values())
        pixels = max(kept * self.resolution**2, 1)
        summary: dict[str, Any] = {
            "image_dir": str(folder),
            "images": kept,
            "skipped": {k: len(v) for k, v in skipped.items()},
            "skipped_examples": {k: v[:5] for k, v in skipped.items() if v},
            "mean_pixel": round(float(stats[0]) / pixels, 3),
            "frac_nonzero": round(float(stats[1]) / pixels, 4),
            "frac_ge_128": round(float(stats[2]) / pixels, 4),
            "splits": {
                s: {"count": len(a["labels"]), "label_1": int(a["labels"].sum())}
                for s, a in splits.items()
            },
        }
        meta = folder / "generation.json"
        if self.source == "generate" and meta.is_file():
            summary["generation"] = json.loads(meta.read_text())
        return summary


class PathX(Pathfinder):
    """Path-X: Pathfinder at 128x128, hard (defaults in ``conf/task/pathx.yaml``)."""

    name: ClassVar[str] = "pathx"
