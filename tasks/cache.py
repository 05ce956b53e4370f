"""Prepared splits on disk: fixed-length integer arrays, memory-mapped, keyed by the data spec.

Layout of one prepared task (``<data_dir>/cache/<task>-<spec hash>/``)::

    spec.json                    data spec + TaskSpec; written last, marks the cache complete
    <split>/input_ids.npy        [N, L] smallest unsigned int dtype that holds vocab_size
    <split>/lengths.npy          [N] int32, number of real tokens (tokens are left-aligned)
    <split>/labels.npy           [N] int64
    <split>/input_ids_2.npy      pair tasks only, second document
    <split>/lengths_2.npy        pair tasks only

Integrity: ``spec.json`` records, for every array file, its shape, dtype, size in bytes and the
CRC-32 of its bytes (``"integrity": "crc32-v1"``, ``"arrays": {"train/input_ids.npy": ...}``).
Opening a split checks existence, size, shape and dtype (no read of the data); ``verify_cache
(full=True)`` (what ``lra-data`` runs) also recomputes every CRC. A cache written before these
records is *unverified*, not corrupt: it opens, and a file numpy cannot map is still reported
by name. A mismatch raises :class:`~tasks.errors.CacheCorruptError` naming the file and the
``lra-data`` command that rebuilds the cache.

The cache is written into ``<cache>.tmp<pid>/`` and renamed into place; a failed write removes
it, and leftovers of killed writers are swept before the next write (``tasks.files``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from tasks import files
from tasks.errors import CacheCorruptError
from tasks.spec import TaskSpec

SPLITS = ("train", "val", "test")
INTEGRITY = "crc32-v1"  # format of the per-file records in spec.json
_CHUNK = 1 << 24


def spec_hash(data_spec: dict[str, Any]) -> str:
    """Stable 10-hex-digit hash of a JSON-serialisable data spec."""
    blob = json.dumps(data_spec, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def token_dtype(vocab_size: int) -> np.dtype:
    """Smallest unsigned dtype that stores ids ``0 .. vocab_size-1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"vocab_size {vocab_size} too large")


def is_complete(cache_dir: Path) -> bool:
    return (cache_dir / "spec.json").is_file()


def file_crc32(path: Path) -> int:
    """CRC-32 of a file's bytes, read in 16 MiB chunks."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


class _CrcWriter:
    """File-like sink for ``np.save``: counts bytes and CRC-32 on the way (no read-back)."""

    def __init__(self, f):
        self.f, self.crc, self.size = f, 0, 0

    def write(self, data) -> int:
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        return len(data)


def save_array(path: Path, value: np.ndarray) -> dict[str, Any]:
    """``np.save`` to ``path``; return its record (shape, dtype, bytes, CRC-32).

    An ``OSError`` (disk full) carries its errno and the file name (numpy's own fast path
    reports only "N requested and M written").
    """
    try:
        with open(path, "wb") as f:
            sink = _CrcWriter(f)
            np.save(sink, value, allow_pickle=False)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err
    return {
        "shape": list(value.shape),
        "dtype": value.dtype.str,
        "bytes": sink.size,
        "crc32": sink.crc,
    }


def rebuild_hint(cache_dir: Path) -> str:
    task = Path(cache_dir).name.rsplit("-", 1)[0]
    return (
        f"rebuild it with `lra-data task={task}` and the same task.* overrides and data_dir as "
        f"this run (lra-data replaces a corrupt cache), or delete {cache_dir}"
    )


def write_cache(
    cache_dir: Path,
    splits: dict[str, dict[str, np.ndarray]],
    spec: TaskSpec,
    data_spec: dict[str, Any],
    summary: dict[str, Any] | None = None,
) -> None:
    """Write every split's arrays atomically: a temp folder renamed into place at the end.

    Records each file's shape, dtype, size and CRC-32 in ``spec.json``. A failure (disk full,
    interrupt) removes the temp folder; stale temp folders of dead writers are swept first. If
    another process installs the same cache meanwhile, its copy is kept and ours discarded.

    Args:
        splits: ``{split: {"input_ids": [N, L], "lengths": [N], "labels": [N], ...}}``.
        summary: free-form facts about the preparation (counts, skipped files) kept in spec.json.
    """
    cache_dir = Path(cache_dir)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    files.sweep(cache_dir.parent)
    tmp = files.tmp_name(cache_dir)
    files.remove(tmp)
    dtype = token_dtype(spec.vocab_size)
    try:
        records: dict[str, dict[str, Any]] = {}
        for split, arrays in splits.items():
            (tmp / split).mkdir(parents=True)
            for key, value in arrays.items():
                value = np.asarray(value)
                if key.startswith("input_ids"):
                    value = value.astype(dtype, copy=False)
                elif key.startswith("lengths"):
                    value = value.astype(np.int32, copy=False)
                elif key == "labels":
                    value = value.astype(np.int64, copy=False)
                rel = f"{split}/{key}.npy"
                records[rel] = save_array(tmp / rel, value)
        meta = {
            "data_spec": data_spec,
            "task_spec": asdict(spec),
            "sizes": {s: int(len(a["labels"])) for s, a in splits.items()},
            "summary": summary or {},
            "integrity": INTEGRITY,
            "arrays": records,
        }
        (tmp / "spec.json").write_text(json.dumps(meta, indent=2, default=str))
        _install(tmp, cache_dir)
    except BaseException:
        files.remove(tmp)
        raise


def _install(tmp: Path, cache_dir: Path) -> None:
    """Rename ``tmp`` onto ``cache_dir``, moving an old copy aside first (then removing it)."""
    old = files.tmp_name(cache_dir.with_name(cache_dir.name + ".old"))
    if cache_dir.exists():
        os.replace(cache_dir, old)
    try:
        os.replace(tmp, cache_dir)
    except OSError:
        if not is_complete(cache_dir):  # not a concurrent writer that finished first
            raise
        files.remove(tmp)
    files.remove(old)


def read_meta(cache_dir: Path) -> dict[str, Any]:
    path = Path(cache_dir) / "spec.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CacheCorruptError(f"{path}: unreadable ({err}); {rebuild_hint(cache_dir)}") from None


def _check_file(cache_dir: Path, rel: str, record: dict[str, Any], full: bool) -> None:
    path = cache_dir / rel
    hint = rebuild_hint(cache_dir)
    if not path.is_file():
        raise CacheCorruptError(f"{path}: missing from the cache; {hint}")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise CacheCorruptError(
            f"{path}: {size} bytes, {record['bytes']} when written (truncated or replaced); {hint}"
        )
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise CacheCorruptError(f"{path}: not a readable .npy ({err}); {hint}") from None
    if list(array.shape) != record["shape"] or array.dtype.str != record["dtype"]:
        raise CacheCorruptError(
            f"{path}: shape {list(array.shape)} {array.dtype.str}, written as "
            f"{record['shape']} {record['dtype']}; {hint}"
        )
    del array
    if full and file_crc32(path) != record["crc32"]:
        raise CacheCorruptError(f"{path}: checksum differs from the one written; {hint}")


def verify_cache(cache_dir: Path, full: bool = False, splits: tuple[str, ...] = SPLITS) -> str:
    """Check the array files of ``splits`` against the records of ``spec.json``.

    Quick (default): existence, size, shape, dtype; ``full`` also recomputes each CRC-32.
    Returns ``"verified"``, or ``"unverified"`` for a cache written before integrity records
    (then only checks that numpy can map every file). Raises :class:`CacheCorruptError`.
    """
    cache_dir = Path(cache_dir)
    meta = read_meta(cache_dir)
    records = meta.get("arrays")
    if meta.get("integrity") != INTEGRITY or not isinstance(records, dict):
        for split in splits:
            if split in meta.get("sizes", {}):
                for path in sorted((cache_dir / split).glob("*.npy")):
                    _map(path, cache_dir)
        return "unverified"
    for split in splits:
        if split not in meta.get("sizes", {}):
            continue
        own = {rel: r for rel, r in records.items() if rel.split("/", 1)[0] == split}
        if not own:
            raise CacheCorruptError(
                f"{cache_dir / 'spec.json'}: no record of split {split}; {rebuild_hint(cache_dir)}"
            )
        for rel, record in own.items():
            _check_file(cache_dir, rel, record, full)
    return "verified"


def _map(path: Path, cache_dir: Path, mmap: str | None = "r") -> np.ndarray:
    """``np.load`` that names the file and the fix when numpy cannot read it."""
    try:
        return np.load(path, mmap_mode=mmap)
    except FileNotFoundError:
        raise CacheCorruptError(
            f"{path}: missing from the cache; {rebuild_hint(cache_dir)}"
        ) from None
    except (ValueError, OSError, EOFError) as err:
        raise CacheCorruptError(f"{path}: unreadable ({err}); {rebuild_hint(cache_dir)}") from None


class ArraySplit(Dataset):
    """One prepared split, memory-mapped; items and batches are dicts of tensors.

    Item: ``input_ids`` [L] long, ``mask`` [L] bool (True = real token), ``label`` [] long;
    pair tasks add ``input_ids_2`` and ``mask_2``. ``get_batch`` returns the same keys
    with a leading batch dimension, optionally trimmed to the longest real sequence.
    """

    def __init__(self, split_dir: Path, pair: bool = False):
        self.dir = Path(split_dir)
        self.pair = pair
        root = self.dir.parent
        if (root / "spec.json").is_file():  # sizes, shapes and dtypes as written (no data read)
            verify_cache(root, full=False, splits=(self.dir.name,))
        self.input_ids = _map(self.dir / "input_ids.npy", root)
        self.lengths = _map(self.dir / "lengths.npy", root, None)
        self.labels = _map(self.dir / "labels.npy", root, None)
        if pair:
            self.input_ids_2 = _map(self.dir / "input_ids_2.npy", root)
            self.lengths_2 = _map(self.dir / "lengths_2.npy", root, None)

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict:
        # Pickle the folder, not the mapped arrays (DataLoader workers reopen the files).
        return {"dir": self.dir, "pair": self.pair}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["dir"], state["pair"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.get_batch(np.array([index]))
        return {key: value[0] for key, value in batch.items()}

    def get_batch(self, indices: np.ndarray, trim: bool = False) -> dict[str, torch.Tensor]:
        """Batch of examples at ``indices`` ([B] ints).

        With ``trim``, the length axis is cut to the longest real sequence in the batch;
        that only removes padding, which never changes a model's outputs at real tokens.
        """
        indices = np.asarray(indices)
        out = {"label": torch.from_numpy(self.labels[indices].astype(np.int64))}
        out.update(self._tokens(self.input_ids, self.lengths, indices, trim, ""))
        if self.pair:
            out.update(self._tokens(self.input_ids_2, self.lengths_2, indices, trim, "_2"))
        return out

    @staticmethod
    def _tokens(ids, lengths, indices, trim, suffix) -> dict[str, torch.Tensor]:
        lens = lengths[indices]
        width = max(int(lens.max(initial=1)), 1) if trim else ids.shape[1]
        tokens = torch.from_numpy(np.asarray(ids[indices, :width]).astype(np.int64))
        mask = torch.arange(width)[None, :] < torch.from_numpy(lens.astype(np.int64))[:, None]
        return {f"input_ids{suffix}": tokens, f"mask{suffix}": mask}
