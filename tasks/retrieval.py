"""LRA Retrieval (Tay et al. 2021, §3.3): do two ACL Anthology papers (AAN; Radev et al. 2013)
cite each other? Byte-level document pairs, 2 classes, a shared-weight dual encoder.

Source: the LRA release, ``<release_dir>/tsv_data/new_aan_pairs.{train,eval,test}.tsv``
(147,086 / 18,090 / 17,437 rows; ``eval`` is our ``val``). ``release_dir`` defaults to
``<data_dir>/lra_release``; the archive's nested layout ``<release_dir>/lra_release/tsv_data``
is accepted too. Rows have no header and exactly five tab-separated columns
``label, id1, id2, text1, text2``; no quoting (LRA read them with ``use_quote_delim=False``).
The label may be written as a float (``1.0``) and becomes an int 0/1.

Tokens (``tasks.bytes_tokens``): the raw bytes of each text (not decoded or re-encoded, as
LRA's ``ByteTextEncoder`` saw them), id = byte + 1, pad 0, vocab 257; each document is cut to
``seq_len`` bytes (default 4000, LRA's ``max_length``; LRA also cut to 10,000 bytes first,
which changes nothing at 4000) and stored as ``input_ids`` / ``input_ids_2``.

The files are read as a stream (a first pass counts lines) into memory-mapped scratch arrays,
so peak memory stays small although the train arrays hold ~2.4 GB.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from tasks import bytes_tokens as bt
from tasks import cache, files
from tasks.base import MissingDataError, Task
from tasks.spec import TaskSpec
from tasks.splits import split_summary

NUM_CLASSES = 2
FORMAT = "retrieval-bytes-v1"  # reader + tokeniser version: part of every data spec
RELEASE_SUBDIR = "tsv_data"
FILE_SPLITS = {"train": "train", "val": "eval", "test": "test"}  # our split -> file's name
COLUMNS = ("label", "id1", "id2", "text1", "text2")
CHUNK = 2048  # rows tokenised per vectorised call


def tsv_name(split: str) -> str:
    return f"new_aan_pairs.{FILE_SPLITS[split]}.tsv"


def count_lines(path: Path, block: int = 1 << 24) -> int:
    """Number of lines (a last line without ``\\n`` counts); an upper bound on the rows."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(block):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def parse_label(field: bytes) -> int:
    """``b"1"``, ``b"1.0"`` -> 1; anything that is not 0 or 1 raises ``ValueError``."""
    value = float(field)
    if not math.isfinite(value) or value != int(value) or not 0 <= value < NUM_CLASSES:
        raise ValueError(field)
    return int(value)


def read_rows(path: str | Path) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Rows of an AAN TSV as ``(line number, label, text1, text2)``, texts as raw bytes.

    Line ends ``\\n`` and ``\\r\\n`` are accepted; empty lines are skipped. Raises
    ``ValueError`` naming the file and the 1-based line on a row without exactly five
    tab-separated columns or with a label that is not 0/1 (``0.0``/``1.0`` accepted).
    """
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if line.endswith(b"\n"):
                line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if not line:
                continue
            parts = line.split(b"\t")
            if len(parts) != len(COLUMNS):
                raise ValueError(
                    f"{path}:{lineno}: expected {len(COLUMNS)} tab-separated columns "
                    f"({', '.join(COLUMNS)}), got {len(parts)}"
                )
            try:
                label = parse_label(parts[0])
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: label must be 0 or 1 (written 0, 1, 0.0 or 1.0), "
                    f"got {parts[0][:20]!r}"
                ) from None
            yield lineno, label, parts[3], parts[4]


def tokenize_file(
    path: str | Path, seq_len: int, scratch: Path | None = None, progress: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read one AAN TSV and tokenise both documents of every row.

    Args:
        seq_len: bytes kept per document (L).
        scratch: folder for memory-mapped arrays (None: in memory).

    Returns:
        ``(arrays, facts)``: ``input_ids``/``input_ids_2`` [N, L] uint16, ``lengths``/
        ``lengths_2`` [N] int32, ``labels`` [N] int64; ``facts`` holds truncation counts.
    """
    path = Path(path)
    capacity = count_lines(path)

    def alloc(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        if scratch is None or not capacity:
            return np.zeros(shape, dtype=dtype)
        scratch.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(scratch / f"{name}.npy", "w+", dtype, shape)

    arrays = {
        "input_ids": alloc("input_ids", (capacity, seq_len), bt.DTYPE),
        "input_ids_2": alloc("input_ids_2", (capacity, seq_len), bt.DTYPE),
        "lengths": np.zeros(capacity, dtype=np.int32),
        "lengths_2": np.zeros(capacity, dtype=np.int32),
        "labels": np.zeros(capacity, dtype=np.int64),
    }
    truncated = [0, 0]
    n = 0
    bar = tqdm(total=capacity, desc=path.name, unit="row", disable=not progress)

    def flush(rows: list[tuple[int, bytes, bytes]]) -> None:
        nonlocal n
        stop = n + len(rows)
        arrays["labels"][n:stop] = [r[0] for r in rows]
        for side, suffix in enumerate(("", "_2")):
            full = bt.encode_into(
                [r[1 + side] for r in rows],
                arrays[f"input_ids{suffix}"][n:stop],
                arrays[f"lengths{suffix}"][n:stop],
            )
            truncated[side] += int((full > seq_len).sum())
        bar.update(len(rows))
        n = stop

    rows: list[tuple[int, bytes, bytes]] = []
    for _, label, text1, text2 in read_rows(path):
        rows.append((label, text1, text2))
        if len(rows) == CHUNK:
            flush(rows)
            rows = []
    if rows:
        flush(rows)
    bar.close()
    if not n:
        raise ValueError(f"{path}:1: no rows (expected {', '.join(COLUMNS)}, tab-separated)")
    arrays = {k: v[:n] for k, v in arrays.items()}  # empty lines leave unused rows at the end
    return arrays, {"truncated": truncated[0], "truncated_2": truncated[1]}


class Retrieval(Task):
    """AAN document pairs from the LRA release; ``progress`` shows reading bars."""

    name: ClassVar[str] = "retrieval"
    # LRA cuts every AAN document (whole papers) to its first 4000 bytes: most are longer
    truncation_expected: ClassVar[bool] = True
    progress: bool = True

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            vocab_size=bt.VOCAB_SIZE,
            max_len=int(self.cfg.seq_len),
            num_classes=NUM_CLASSES,
            pair=True,
            pad_id=bt.PAD_ID,
        )

    def tsv_dir(self) -> Path:
        """``<release_dir>/tsv_data``, or the archive's ``<release_dir>/lra_release/tsv_data``."""
        return self.release_path(RELEASE_SUBDIR)

    def source_of(self, split: str) -> str:
        return str(self.tsv_paths()[split])

    def tsv_paths(self) -> dict[str, Path]:
        folder = self.tsv_dir()
        return {s: folder / tsv_name(s) for s in cache.SPLITS}

    def data_spec(self) -> dict[str, Any]:
        """Format, length and the TSV sizes (another copy of the files re-prepares)."""
        sizes = {
            s: (p.stat().st_size if p.is_file() else None) for s, p in self.tsv_paths().items()
        }
        return {
            "name": self.name,
            "format": FORMAT,
            "seq_len": int(self.cfg.seq_len),
            "file_sizes": sizes,
        }

    def _check_release(self) -> None:
        paths = self.tsv_paths()
        missing = [p for p in paths.values() if not p.is_file()]
        if not missing:
            return
        where = (
            f"the folder {self.tsv_dir()} does not exist"
            if not self.tsv_dir().is_dir()
            else f"missing: {', '.join(p.name for p in missing)}"
        )
        raise MissingDataError(
            f"AAN release file {missing[0]} not found ({where}). `lra-data task=retrieval` "
            "needs the LRA release: run `scripts/fetch_lra_release.sh` (downloads "
            "lra_release.gz, ~7.7 GB, resumably, and extracts it into data/lra_release), or "
            "extract it yourself and pass task.release_dir=<folder holding tsv_data>."
        )

    @property
    def _scratch(self) -> Path:
        return files.tmp_name(self.data_dir / "cache" / f".{self.name}-{self.spec_hash}.build")

    def prepare(self, verify: str = "quick", rebuild: bool = False) -> Path:
        """As ``Task.prepare``; the memory-mapped scratch arrays are removed afterwards."""
        try:
            return super().prepare(verify, rebuild)
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def build_splits(self) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
        self._check_release()
        seq_len = int(self.cfg.seq_len)
        splits: dict[str, dict[str, np.ndarray]] = {}
        summary: dict[str, Any] = {"tsv_dir": str(self.tsv_dir()), "splits": {}}
        for split, path in self.tsv_paths().items():
            arrays, facts = tokenize_file(path, seq_len, self._scratch / split, self.progress)
            splits[split] = arrays
            lengths_2 = arrays["lengths_2"]
            summary["splits"][split] = split_summary(
                arrays["lengths"],
                arrays["labels"],
                NUM_CLASSES,
                max_length_2=int(lengths_2.max()),
                mean_length_2=round(float(lengths_2.mean()), 1),
                **facts,
            )
        return splits, summary
